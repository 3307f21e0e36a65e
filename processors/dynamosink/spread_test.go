package dynamosink

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/leasehold/leasehold/processors"
)

// noAssetMsgs returns n events of tenant t1 without an asset id (requests
// for pages and scripts).
func noAssetMsgs(n int) []*processors.Message {
	out := msgs(n, 1)
	for _, m := range out {
		m.Event.AssetID = ""
	}
	return out
}

// Defect 7: every event without an asset id shared the partition key
// "<tenant>#-", one hot partition for most of a tenant's CloudFront
// traffic. They now spread evenly over no_asset_partitions keys, each
// event always to the same key (a replay overwrites, never duplicates),
// and NoAssetPartitionKeys names every key a reader must query.
func TestEventsWithoutAnAssetSpreadOverPartitions(t *testing.T) {
	const n = 1600
	db := newFakeDB("backup")
	s := newSink(t, db, Options{})
	ss := openSink(t, s, &fakeDL{})
	ms := noAssetMsgs(n)
	for i := 0; i < n; i += 100 {
		if err := ss.Write(t.Context(), ms[i:i+100]); err != nil {
			t.Fatal(err)
		}
	}
	if err := ss.Write(t.Context(), ms[:500]); err != nil { // a replay
		t.Fatal(err)
	}
	if db.count() != n {
		t.Fatalf("%d items after a replay, want %d", db.count(), n)
	}
	if got := len(db.query(PartitionKey("t1", ""))); got != 0 {
		t.Errorf("%d items still share the key t1#-", got)
	}
	keys := NoAssetPartitionKeys("t1", DefaultNoAssetPartitions)
	total := 0
	for _, pk := range keys {
		got := len(db.query(pk))
		if got < n/DefaultNoAssetPartitions/2 || got > n/DefaultNoAssetPartitions*2 {
			t.Errorf("partition %s holds %d of %d items: not an even spread", pk, got, n)
		}
		total += got
	}
	if len(keys) != DefaultNoAssetPartitions || total != n {
		t.Fatalf("%d keys hold %d items, want %d and %d", len(keys), total, DefaultNoAssetPartitions, n)
	}
	if k := NoAssetPartitionKey("t1", "e7", DefaultNoAssetPartitions); k != NoAssetPartitionKey("t1", "e7", DefaultNoAssetPartitions) || k[:5] != "t1#-#" {
		t.Errorf("NoAssetPartitionKey = %q: not deterministic or not <tenant>#-#<n>", k)
	}
	// Assets keep their one key: one asset's history stays one Query.
	if got := len(db.query(PartitionKey("t1", "a0"))); got != 0 {
		t.Errorf("no-asset events landed on an asset's key")
	}
}

func TestNoAssetPartitionsOptions(t *testing.T) {
	db := newFakeDB("backup")
	s := newSink(t, db, Options{NoAssetPartitions: 1})
	ss := openSink(t, s, &fakeDL{})
	if err := ss.Write(t.Context(), noAssetMsgs(50)); err != nil {
		t.Fatal(err)
	}
	if got := len(db.query("t1#-")); got != 50 {
		t.Fatalf("no_asset_partitions 1 keeps the single key t1#-: %d of 50 there", got)
	}
	for _, bad := range []int{-1, MaxNoAssetPartitions + 1} {
		if err := (Options{Table: "backup", NoAssetPartitions: bad}).Validate(); err == nil {
			t.Errorf("no_asset_partitions %d accepted", bad)
		}
	}
}

// A throttled table makes the shard wait, and the sink reports the shard
// as stalled (for the metrics and readiness) until writes go through.
func TestThrottlingIsReportedWhileItLasts(t *testing.T) {
	db := newFakeDB("backup")
	var throttled atomic.Bool
	throttled.Store(true)
	db.fail = func(int) error {
		if throttled.Load() {
			return &types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}
		}
		return nil
	}
	s := newSink(t, db, Options{})
	ss := openSink(t, s, &fakeDL{})
	done := make(chan error, 1)
	go func() { done <- ss.Write(t.Context(), msgs(30, 3)) }()
	deadline := time.Now().Add(5 * time.Second)
	for s.State().Stalled == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a throttled shard was never reported")
		}
		time.Sleep(time.Millisecond)
	}
	if st := s.State(); st.CannotWrite != 0 || st.Retries == 0 {
		t.Errorf("throttling is transient, not 'cannot write': %+v", st)
	}
	throttled.Store(false)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := s.State(); st.Stalled != 0 || db.count() != 30 {
		t.Fatalf("after the throttling: state %+v, %d items", st, db.count())
	}
}
