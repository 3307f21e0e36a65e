// Package kinesisbench is a Kinesis-compatible HTTP server for benchmarks
// and tests of the read path, in memory and fast: the AWS SDK's Kinesis
// client talks to it over real HTTP (AWS JSON 1.1), as to Kinesis.
//
// It exists because the local Kinesis emulator takes seconds per large
// GetRecords or PutRecords call once a stream holds a backlog, so a
// reader's catch-up at Kinesis' own read limits cannot be measured
// against it. This server answers at once and enforces the per-response
// limits (at most 10,000 records and 10 MiB per GetRecords); put the
// faultproxy.KinesisProxy in front of it for the per-shard rate limits
// (5 calls and 2 MiB per second). Figures measured against it say so.
//
// It is not an emulator of Kinesis: it implements CreateStream,
// DeleteStream, DescribeStream, DescribeStreamSummary, ListShards,
// PutRecord, PutRecords, GetShardIterator and GetRecords for streams of
// open shards (no resharding, retention, expiring iterators, encryption
// or enhanced fan-out), accepts any credentials, and checks no
// signatures. Development only: it is not in the production binary.
package kinesisbench

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limits of one GetRecords response, as Kinesis documents them.
const (
	MaxRecordsPerCall = 10000
	MaxBytesPerCall   = 10 << 20
)

// Server is a running kinesisbench server. Safe for concurrent use.
type Server struct {
	ln  net.Listener
	srv *http.Server
	wg  sync.WaitGroup

	mu      sync.Mutex
	streams map[string]*stream
	seq     int64 // last sequence number handed out, server-wide
}

type stream struct {
	name    string
	created time.Time
	shards  []*shard
}

type shard struct {
	id         string
	start, end *big.Int // hash key range, inclusive
	firstSeq   string
	mu         sync.Mutex
	records    []record
}

type record struct {
	seq  string
	pk   string
	data []byte
	at   time.Time
}

// Start listens on 127.0.0.1 (a free port) and serves until Close.
func Start() (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("kinesisbench: listen: %w", err)
	}
	s := &Server{ln: ln, streams: map[string]*stream{}}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	s.wg.Go(func() { _ = s.srv.Serve(ln) })
	return s, nil
}

// URL is the endpoint for the SDK (http://127.0.0.1:port).
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Close stops serving.
func (s *Server) Close() error {
	err := s.srv.Close()
	s.wg.Wait()
	return err
}

// apiError is an error answered as Kinesis answers it.
type apiError struct {
	status int
	kind   string
	msg    string
}

func (e *apiError) Error() string { return e.kind + ": " + e.msg }

func notFound(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, "ResourceNotFoundException", fmt.Sprintf(format, args...)}
}

func invalid(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, "InvalidArgumentException", fmt.Sprintf(format, args...)}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "Kinesis_20131202.")
	body, err := io.ReadAll(r.Body)
	if err != nil || !ok || r.Method != http.MethodPost {
		writeErr(w, &apiError{http.StatusBadRequest, "SerializationException", "POST an X-Amz-Target Kinesis_20131202 operation"})
		return
	}
	var out any
	switch op {
	case "CreateStream":
		out, err = s.createStream(body)
	case "DeleteStream":
		out, err = s.deleteStream(body)
	case "DescribeStream", "DescribeStreamSummary":
		out, err = s.describe(body, op == "DescribeStreamSummary")
	case "ListShards":
		out, err = s.listShards(body)
	case "PutRecord":
		out, err = s.putRecord(body)
	case "PutRecords":
		out, err = s.putRecords(body)
	case "GetShardIterator":
		out, err = s.getShardIterator(body)
	case "GetRecords":
		out, err = s.getRecords(body)
	default:
		err = &apiError{http.StatusBadRequest, "UnknownOperationException", op + " is not implemented by kinesisbench"}
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		writeErr(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

func writeErr(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{http.StatusInternalServerError, "InternalFailure", err.Error()}
	}
	b, _ := json.Marshal(map[string]string{"__type": ae.kind, "message": ae.msg})
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Errortype", ae.kind)
	w.WriteHeader(ae.status)
	_, _ = w.Write(b)
}

func decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return &apiError{http.StatusBadRequest, "SerializationException", err.Error()}
	}
	return nil
}

// epoch is a time as AWS JSON writes timestamps: seconds since the epoch.
type epoch time.Time

func (e epoch) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(time.Time(e).UnixMilli())/1000, 'f', 3, 64), nil
}

func (s *Server) stream(name string) (*stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[name]
	if st == nil {
		return nil, notFound("stream %s not found", name)
	}
	return st, nil
}

// streamName takes the stream from a StreamName or StreamARN field.
func streamName(name, arn string) string {
	if name != "" {
		return name
	}
	_, n, _ := strings.Cut(arn, ":stream/")
	return n
}

var hashSpace = new(big.Int).Lsh(big.NewInt(1), 128)

func (s *Server) createStream(body []byte) (any, error) {
	var in struct {
		StreamName string
		ShardCount int
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.StreamName == "" || in.ShardCount < 1 || in.ShardCount > 1000 {
		return nil, invalid("StreamName and a ShardCount of 1 to 1000 are required")
	}
	st := &stream{name: in.StreamName, created: time.Now()}
	// Shard i owns hash keys h with floor(h·n / 2^128) = i.
	bound := func(i int) *big.Int {
		b := new(big.Int).Mul(big.NewInt(int64(i)), hashSpace)
		q, m := b.DivMod(b, big.NewInt(int64(in.ShardCount)), new(big.Int))
		if m.Sign() > 0 {
			q.Add(q, big.NewInt(1))
		}
		return q
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.streams[in.StreamName] != nil {
		return nil, &apiError{http.StatusBadRequest, "ResourceInUseException", "stream " + in.StreamName + " exists"}
	}
	for i := range in.ShardCount {
		s.seq++
		st.shards = append(st.shards, &shard{id: fmt.Sprintf("shardId-%012d", i), start: bound(i),
			end: new(big.Int).Sub(bound(i+1), big.NewInt(1)), firstSeq: seqString(s.seq)})
	}
	s.streams[in.StreamName] = st
	return struct{}{}, nil
}

func seqString(n int64) string { return fmt.Sprintf("49%054d", n) }

func (s *Server) deleteStream(body []byte) (any, error) {
	var in struct{ StreamName, StreamARN string }
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	name := streamName(in.StreamName, in.StreamARN)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.streams[name] == nil {
		return nil, notFound("stream %s not found", name)
	}
	delete(s.streams, name)
	return struct{}{}, nil
}

type shardOut struct {
	ShardId      string
	HashKeyRange struct {
		StartingHashKey, EndingHashKey string
	}
	SequenceNumberRange struct {
		StartingSequenceNumber string
	}
}

func (sh *shard) out() shardOut {
	var o shardOut
	o.ShardId = sh.id
	o.HashKeyRange.StartingHashKey, o.HashKeyRange.EndingHashKey = sh.start.String(), sh.end.String()
	o.SequenceNumberRange.StartingSequenceNumber = sh.firstSeq
	return o
}

func (st *stream) arn() string { return "arn:aws:kinesis:us-east-1:000000000000:stream/" + st.name }

func (s *Server) describe(body []byte, summary bool) (any, error) {
	var in struct{ StreamName, StreamARN string }
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	st, err := s.stream(streamName(in.StreamName, in.StreamARN))
	if err != nil {
		return nil, err
	}
	desc := map[string]any{
		"StreamName": st.name, "StreamARN": st.arn(), "StreamStatus": "ACTIVE", "RetentionPeriodHours": 24,
		"StreamCreationTimestamp": epoch(st.created), "EncryptionType": "NONE", "EnhancedMonitoring": []any{},
	}
	if summary {
		desc["OpenShardCount"], desc["ConsumerCount"] = len(st.shards), 0
		return map[string]any{"StreamDescriptionSummary": desc}, nil
	}
	shards := make([]shardOut, 0, len(st.shards))
	for _, sh := range st.shards {
		shards = append(shards, sh.out())
	}
	desc["Shards"], desc["HasMoreShards"] = shards, false
	return map[string]any{"StreamDescription": desc}, nil
}

func (s *Server) listShards(body []byte) (any, error) {
	var in struct{ StreamName, StreamARN, NextToken string }
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	name := streamName(in.StreamName, in.StreamARN)
	if in.NextToken != "" { // every listing fits one page; a token names its stream
		name = in.NextToken
	}
	st, err := s.stream(name)
	if err != nil {
		return nil, err
	}
	shards := make([]shardOut, 0, len(st.shards))
	for _, sh := range st.shards {
		shards = append(shards, sh.out())
	}
	return map[string]any{"Shards": shards}, nil
}

type putEntry struct {
	Data            []byte
	PartitionKey    string
	ExplicitHashKey string
}

type putResult struct {
	SequenceNumber string
	ShardId        string
}

// put appends entries to st, each to the shard its hash key falls in.
func (s *Server) put(st *stream, entries []putEntry) ([]putResult, error) {
	out := make([]putResult, len(entries))
	now := time.Now()
	for i, e := range entries {
		if e.PartitionKey == "" || len(e.PartitionKey) > 256 {
			return nil, invalid("record %d: a PartitionKey of 1 to 256 characters is required", i)
		}
		if len(e.Data)+len(e.PartitionKey) > 1<<20 {
			return nil, invalid("record %d: larger than 1 MiB", i)
		}
		var h *big.Int
		if e.ExplicitHashKey != "" {
			var ok bool
			if h, ok = new(big.Int).SetString(e.ExplicitHashKey, 10); !ok || h.Sign() < 0 || h.Cmp(hashSpace) >= 0 {
				return nil, invalid("record %d: ExplicitHashKey %q is not a 128-bit decimal", i, e.ExplicitHashKey)
			}
		} else {
			sum := md5.Sum([]byte(e.PartitionKey))
			h = new(big.Int).SetBytes(sum[:])
		}
		idx := int(new(big.Int).Rsh(h.Mul(h, big.NewInt(int64(len(st.shards)))), 128).Int64())
		sh := st.shards[idx]
		// The server lock orders sequence numbers; the shard's keeps each
		// shard's records in that order.
		s.mu.Lock()
		s.seq++
		seq := seqString(s.seq)
		sh.mu.Lock()
		s.mu.Unlock()
		sh.records = append(sh.records, record{seq: seq, pk: e.PartitionKey, data: e.Data, at: now})
		sh.mu.Unlock()
		out[i] = putResult{SequenceNumber: seq, ShardId: sh.id}
	}
	return out, nil
}

func (s *Server) putRecord(body []byte) (any, error) {
	var in struct {
		StreamName, StreamARN string
		putEntry
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	st, err := s.stream(streamName(in.StreamName, in.StreamARN))
	if err != nil {
		return nil, err
	}
	res, err := s.put(st, []putEntry{in.putEntry})
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

func (s *Server) putRecords(body []byte) (any, error) {
	var in struct {
		StreamName, StreamARN string
		Records               []putEntry
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if len(in.Records) == 0 || len(in.Records) > 500 {
		return nil, invalid("PutRecords takes 1 to 500 records, not %d", len(in.Records))
	}
	st, err := s.stream(streamName(in.StreamName, in.StreamARN))
	if err != nil {
		return nil, err
	}
	res, err := s.put(st, in.Records)
	if err != nil {
		return nil, err
	}
	return map[string]any{"FailedRecordCount": 0, "Records": res}, nil
}

// iterator is what a shard iterator encodes: a shard and the index of the
// next record to read.
type iterator struct {
	Stream string `json:"s"`
	Shard  int    `json:"h"`
	Next   int    `json:"n"`
}

func (it iterator) String() string {
	b, _ := json.Marshal(it)
	return base64.RawURLEncoding.EncodeToString(b)
}

func parseIterator(s string) (iterator, error) {
	var it iterator
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, &it) != nil {
		return it, invalid("shard iterator %q is not one of kinesisbench's", s)
	}
	return it, nil
}

func (st *stream) shard(id string) (int, *shard, error) {
	for i, sh := range st.shards {
		if sh.id == id {
			return i, sh, nil
		}
	}
	return 0, nil, notFound("shard %s not found in stream %s", id, st.name)
}

// seqLess compares two of the server's sequence numbers (equal length).
func seqLess(a, b string) bool { return len(a) < len(b) || len(a) == len(b) && a < b }

func (s *Server) getShardIterator(body []byte) (any, error) {
	var in struct {
		StreamName, StreamARN, ShardId, ShardIteratorType, StartingSequenceNumber string
		Timestamp                                                                 float64
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	st, err := s.stream(streamName(in.StreamName, in.StreamARN))
	if err != nil {
		return nil, err
	}
	idx, sh, err := st.shard(in.ShardId)
	if err != nil {
		return nil, err
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	recs := sh.records
	var next int
	switch in.ShardIteratorType {
	case "TRIM_HORIZON":
	case "LATEST":
		next = len(recs)
	case "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER":
		if in.StartingSequenceNumber == "" {
			return nil, invalid("%s needs StartingSequenceNumber", in.ShardIteratorType)
		}
		next = sort.Search(len(recs), func(i int) bool { return !seqLess(recs[i].seq, in.StartingSequenceNumber) })
		if in.ShardIteratorType == "AFTER_SEQUENCE_NUMBER" && next < len(recs) && recs[next].seq == in.StartingSequenceNumber {
			next++
		}
	case "AT_TIMESTAMP":
		ts := time.UnixMilli(int64(in.Timestamp * 1000))
		next = sort.Search(len(recs), func(i int) bool { return !recs[i].at.Before(ts) })
	default:
		return nil, invalid("ShardIteratorType %q", in.ShardIteratorType)
	}
	return map[string]string{"ShardIterator": iterator{Stream: st.name, Shard: idx, Next: next}.String()}, nil
}

type recordOut struct {
	SequenceNumber              string
	PartitionKey                string
	Data                        []byte
	ApproximateArrivalTimestamp epoch
}

// getRecords answers from the iterator's position: at most Limit records
// (10,000 by default and at most), and no more than 10 MiB of data and
// partition keys.
func (s *Server) getRecords(body []byte) (any, error) {
	var in struct {
		ShardIterator string
		Limit         int
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.Limit == 0 {
		in.Limit = MaxRecordsPerCall
	}
	if in.Limit < 1 || in.Limit > MaxRecordsPerCall {
		return nil, invalid("Limit %d: 1 to %d", in.Limit, MaxRecordsPerCall)
	}
	it, err := parseIterator(in.ShardIterator)
	if err != nil {
		return nil, err
	}
	st, err := s.stream(it.Stream)
	if err != nil {
		return nil, err
	}
	if it.Shard < 0 || it.Shard >= len(st.shards) {
		return nil, invalid("shard iterator %q names no shard", in.ShardIterator)
	}
	sh := st.shards[it.Shard]
	sh.mu.Lock()
	recs := sh.records[min(it.Next, len(sh.records)):]
	sh.mu.Unlock()
	out := make([]recordOut, 0, min(len(recs), in.Limit))
	bytes := 0
	for _, r := range recs {
		n := len(r.data) + len(r.pk)
		if len(out) == in.Limit || bytes+n > MaxBytesPerCall {
			break
		}
		bytes += n
		out = append(out, recordOut{SequenceNumber: r.seq, PartitionKey: r.pk, Data: r.data, ApproximateArrivalTimestamp: epoch(r.at)})
	}
	it.Next += len(out)
	behind := int64(0)
	if len(out) < len(recs) {
		behind = max(0, time.Since(recs[len(out)].at).Milliseconds())
	}
	return map[string]any{"Records": out, "NextShardIterator": it.String(), "MillisBehindLatest": behind}, nil
}
