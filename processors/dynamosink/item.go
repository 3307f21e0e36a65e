package dynamosink

import (
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/processors"
)

// Attribute names of an item.
const (
	AttrPK                = "pk"
	AttrSK                = "sk"
	AttrEventID           = "event_id"
	AttrEventTime         = "event_time" // RFC 3339, UTC
	AttrEventType         = "event_type"
	AttrSource            = "source"
	AttrTenant            = "tenant"
	AttrAssetID           = "asset_id"
	AttrUserID            = "user_id"
	AttrClientIP          = "client_ip"
	AttrCountryISO        = "country_iso"
	AttrReferringDomain   = "referring_domain"
	AttrURI               = "uri"
	AttrHost              = "host"
	AttrBytes             = "bytes"  // N
	AttrStatus            = "status" // N
	AttrBot               = "bot"    // BOOL
	AttrStream            = "stream"
	AttrShardID           = "shard_id"
	AttrSequenceNumber    = "sequence_number"
	AttrSubSequenceNumber = "sub_sequence_number" // N
	AttrDoc               = "doc"                 // the event as JSON (event.AppendJSON)
)

// none stands for an empty tenant or asset id in keys.
const none = "-"

// sortTime is a fixed-width UTC layout, so sort keys order by time.
const sortTime = "2006-01-02T15:04:05.000000000Z"

// PartitionKey returns the pk of an asset's items: "<tenant>#<asset_id>".
// '%' and '#' in the tenant are escaped (%25, %23) so that the first '#'
// always ends it; an empty tenant or asset id is "-".
func PartitionKey(tenant, assetID string) string {
	if tenant == "" {
		tenant = none
	} else if strings.ContainsAny(tenant, "%#") {
		tenant = strings.NewReplacer("%", "%25", "#", "%23").Replace(tenant)
	}
	if assetID == "" {
		assetID = none
	}
	return tenant + "#" + assetID
}

// NoAssetPartitionKey returns the pk of an event without an asset id:
// "<tenant>#-#<n>" with n in [0, partitions), from an FNV-1a hash of the
// event id, so that the same event always gets the same item while a
// tenant's requests for pages and scripts spread over partitions keys
// instead of one. With partitions 1 it is PartitionKey(tenant, ""),
// "<tenant>#-". (An asset id of the form "-#<n>" would share these keys;
// do not use one.)
func NoAssetPartitionKey(tenant, eventID string, partitions int) string {
	if partitions <= 1 {
		return PartitionKey(tenant, "")
	}
	h := fnv.New32a()
	h.Write([]byte(eventID))
	return PartitionKey(tenant, "") + "#" + strconv.Itoa(int(h.Sum32()%uint32(partitions)))
}

// NoAssetPartitionKeys returns every pk that tenant's events without an
// asset id are spread over: to read them for a time range, Query each
// (they are independent, so in parallel) with the same sort-key condition
// and merge the results by sk.
func NoAssetPartitionKeys(tenant string, partitions int) []string {
	if partitions <= 1 {
		return []string{PartitionKey(tenant, "")}
	}
	out := make([]string, partitions)
	for i := range out {
		out[i] = PartitionKey(tenant, "") + "#" + strconv.Itoa(i)
	}
	return out
}

// SortKey returns the sk of an event: its time (UTC, nanoseconds, fixed
// width) and id, so one asset's items sort by time.
func SortKey(t time.Time, eventID string) string { return SortKeyTime(t) + "#" + eventID }

// SortKeyTime returns the time part of a sort key, for range conditions:
// "sk BETWEEN SortKeyTime(from) AND SortKeyTime(to)" selects the events
// in [from, to).
func SortKeyTime(t time.Time) string { return t.UTC().Format(sortTime) }

// item is one message's item and its size estimate.
type item struct {
	msg  *processors.Message
	key  string // pk + "\x00" + sk, for de-duplication
	attr map[string]types.AttributeValue
	size int
}

// newItem builds m's item; events without an asset id are spread over
// noAssetPartitions keys.
func newItem(m *processors.Message, noAssetPartitions int) item {
	e := &m.Event
	pk, sk := PartitionKey(e.Tenant, e.AssetID), SortKey(e.EventTime, e.EventID)
	if e.AssetID == "" {
		pk = NoAssetPartitionKey(e.Tenant, e.EventID, noAssetPartitions)
	}
	it := item{msg: m, key: pk + "\x00" + sk, attr: make(map[string]types.AttributeValue, 24)}
	str := func(name, v string) {
		if v != "" {
			it.attr[name] = &types.AttributeValueMemberS{Value: v}
			it.size += len(name) + len(v)
		}
	}
	num := func(name string, v int64) {
		s := strconv.FormatInt(v, 10)
		it.attr[name] = &types.AttributeValueMemberN{Value: s}
		it.size += len(name) + len(s)
	}
	str(AttrPK, pk)
	str(AttrSK, sk)
	str(AttrEventID, e.EventID)
	str(AttrEventTime, e.EventTime.UTC().Format(time.RFC3339Nano))
	str(AttrEventType, string(e.EventType))
	str(AttrSource, string(e.Source))
	str(AttrTenant, e.Tenant)
	str(AttrAssetID, e.AssetID)
	str(AttrUserID, e.UserID)
	str(AttrClientIP, e.ClientIP)
	str(AttrCountryISO, e.Geo.CountryISO)
	str(AttrReferringDomain, e.ReferringDomain)
	str(AttrURI, e.URI)
	str(AttrHost, e.Host)
	num(AttrBytes, e.Bytes)
	num(AttrStatus, int64(e.Status))
	it.attr[AttrBot] = &types.AttributeValueMemberBOOL{Value: e.Bot}
	it.size += len(AttrBot) + 1
	r := m.Record
	str(AttrStream, r.StreamName)
	str(AttrShardID, r.ShardID)
	str(AttrSequenceNumber, r.SequenceNumber)
	num(AttrSubSequenceNumber, r.SubSequenceNumber)
	ev := *e
	if ev.SourceRecord == (event.SourceRecord{}) {
		ev.SourceRecord = event.SourceRecord{Stream: r.StreamName, ShardID: r.ShardID, SequenceNumber: r.SequenceNumber, SubSequenceNumber: r.SubSequenceNumber}
	}
	str(AttrDoc, string(ev.AppendJSON(nil)))
	return it
}
