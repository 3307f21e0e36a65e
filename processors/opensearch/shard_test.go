package opensearch

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/processors"
)

func TestWriteFlushIndexesEveryDocumentByEventDay(t *testing.T) {
	f := newFakeCluster(t)
	s, ss, dl := newTestSink(t, testConfig(f))
	msgs := testMsgs(0, 200)
	msgs[5].Event.EventID = "" // falls back to the source record
	if err := ss.Write(t.Context(), msgs[:120]); err != nil {
		t.Fatal(err)
	}
	if err := ss.Write(t.Context(), msgs[120:]); err != nil {
		t.Fatal(err)
	}
	if err := ss.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	docs, _ := f.snapshot()
	if len(docs) != 200 || len(dl.got()) != 0 {
		t.Fatalf("indexed %d, dead-lettered %d; want 200 and 0", len(docs), len(dl.got()))
	}
	tests := []struct{ name, key string }{
		{"before midnight", "leasehold-events-2024.03.09/ev-0"},
		{"last minute of the day", "leasehold-events-2024.03.09/ev-119"},
		{"next day", "leasehold-events-2024.03.10/ev-120"},
		{"fallback id", "leasehold-events-2024.03.09/events-shardId-000000000001-00000000000000000005-0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := docs[tt.key]; !ok {
				t.Fatalf("no document %s", tt.key)
			}
		})
	}
	if got, want := ss.Durable(), msgs[199].Position(); got != want {
		t.Fatalf("Durable = %v, want %v", got, want)
	}
	if st := s.Stats(); st.DocsIndexed != 200 || st.BulkRequests < 1 || st.BulkBytes == 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBatchesSplitAtFlushBytes(t *testing.T) {
	f := newFakeCluster(t)
	cfg := testConfig(f)
	cfg.FlushBytes = 4096
	cfg.FlushInterval = time.Hour
	s, ss, dl := newTestSink(t, cfg)
	msgs := testMsgs(0, 100)
	huge := msgs[50]
	huge.Event.UserAgent = strings.Repeat("x", 5000)
	if err := ss.Write(t.Context(), msgs); err != nil {
		t.Fatal(err)
	}
	if err := ss.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	sizes, requests := append([]int(nil), f.sizes...), len(f.requests)
	f.mu.Unlock()
	if requests < 10 {
		t.Fatalf("%d requests for ~40 KB at 4 KiB each", requests)
	}
	for i, n := range sizes {
		if n > 4096 {
			t.Errorf("request %d is %d bytes, above flush_bytes", i, n)
		}
	}
	if f.hasID(huge.Event.EventID) || f.sentCount(huge.Event.EventID) != 0 {
		t.Fatal("the oversized document was sent")
	}
	got := dl.got()
	if len(got) != 1 || got[0].Event.EventID != huge.Event.EventID || !errors.Is(got[0].Failed().Err, ErrDocumentTooLarge) || !processors.IsPermanent(got[0].Failed().Err) {
		t.Fatalf("dead-lettered %v, want only the oversized document with ErrDocumentTooLarge", got)
	}
	if !strings.Contains(got[0].Failed().Err.Error(), "above flush_bytes (4096)") {
		t.Fatalf("reason %q does not say why", got[0].Failed().Err)
	}
	if huge.Failed() != nil {
		t.Fatal("the message shared with the other sinks was marked failed: only a copy may be")
	}
	if docs, _ := f.snapshot(); len(docs) != 99 {
		t.Fatalf("indexed %d, want 99", len(docs))
	}
	if ss.Durable() != msgs[99].Position() {
		t.Fatalf("Durable = %v", ss.Durable())
	}
	if st := s.Stats(); st.ItemsDeadLettered != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFlushWithoutFlushCall(t *testing.T) {
	tests := []struct {
		name     string
		bytes    ByteSize
		interval time.Duration
		n        int
	}{
		{"by interval", 1 << 20, 20 * time.Millisecond, 3},
		{"by size", 4096, time.Hour, 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCluster(t)
			cfg := testConfig(f)
			cfg.FlushBytes, cfg.FlushInterval = tt.bytes, tt.interval
			_, ss, _ := newTestSink(t, cfg)
			msgs := testMsgs(0, tt.n)
			if err := ss.Write(t.Context(), msgs); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for ss.Durable().IsZero() {
				if time.Now().After(deadline) {
					t.Fatal("nothing became durable without Flush")
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}

func TestItemFailures(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		errType   string
		retried   bool // else dead-lettered
		wantInErr string
	}{
		{"429 retried", 429, "es_rejected_execution_exception", true, ""},
		{"503 retried", 503, "unavailable_shards_exception", true, ""},
		{"500 retried", 500, "internal_error", true, ""},
		{"write block retried", 403, "cluster_block_exception", true, ""},
		{"shard limit retried", 400, "validation_exception: Validation Failed: 1: this action would add [2] total shards, but this cluster currently has [1000]/[1000] maximum shards open;", true, ""},
		{"missing index retried", 404, "index_not_found_exception", true, ""},
		{"closed index retried", 400, "index_closed_exception", true, ""},
		{"alias without write index retried", 400, "illegal_argument_exception: no write index is defined for alias [events]", true, ""},
		{"mapping error dead-lettered", 400, "mapper_parsing_exception", false, "status 400 mapper_parsing_exception"},
		{"other validation dead-lettered", 400, "validation_exception: Validation Failed: 1: id is too long", false, "id is too long"},
		{"conflict dead-lettered", 409, "version_conflict_engine_exception", false, "409"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCluster(t)
			bad := map[string]bool{}
			msgs := testMsgs(0, 30)
			for i := 0; i < 30; i += 3 {
				bad[msgs[i].Event.EventID] = true
			}
			f.onItem = func(id string, sent int) (int, string) {
				if bad[id] && sent == 0 {
					return tt.status, tt.errType
				}
				return 201, ""
			}
			s, ss, dl := newTestSink(t, testConfig(f))
			if err := ss.Write(t.Context(), msgs); err != nil {
				t.Fatal(err)
			}
			if err := ss.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
			docs, requests := f.snapshot()
			st := s.Stats()
			if tt.retried {
				if len(docs) != 30 || len(dl.got()) != 0 || st.ItemsRetried != 10 {
					t.Fatalf("indexed %d, dead-lettered %d, retried %d; want 30, 0, 10", len(docs), len(dl.got()), st.ItemsRetried)
				}
				if len(requests) != 2 || len(requests[1]) != 10 {
					t.Fatalf("requests %v; want the second to resend only the 10 failed items", requests)
				}
				for _, id := range requests[1] {
					if !bad[id] {
						t.Fatalf("resent %s, which had succeeded", id)
					}
				}
			} else {
				got := dl.got()
				if len(docs) != 20 || len(got) != 10 || len(requests) != 1 || st.ItemsDeadLettered != 10 {
					t.Fatalf("indexed %d, dead-lettered %d, requests %d; want 20, 10, 1", len(docs), len(got), len(requests))
				}
				for _, m := range got {
					f := m.Failed()
					var ie *ItemError
					if !bad[m.Event.EventID] || f.Stage != "opensearch" || f.Attempts != 1 || !processors.IsPermanent(f.Err) || !errors.As(f.Err, &ie) || !strings.Contains(f.Err.Error(), tt.wantInErr) {
						t.Fatalf("dead-lettered %s with %+v", m.Event.EventID, f)
					}
					if ie.Index != "leasehold-events-2024.03.09" || ie.ID != m.Event.EventID {
						t.Fatalf("item error %+v", ie)
					}
				}
			}
			if ss.Durable() != msgs[29].Position() {
				t.Fatalf("Durable = %v", ss.Durable())
			}
		})
	}
}

func TestRequestFailuresAreRetried(t *testing.T) {
	tests := []struct {
		name  string
		fault fault
	}{
		{"503", fault503},
		{"429", fault429},
		{"connection dropped", faultDrop},
		{"dropped after applying", faultDropApplied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCluster(t)
			f.onRequest = func(n int, _ []string) fault {
				if n <= 3 {
					return tt.fault
				}
				return faultNone
			}
			s, ss, dl := newTestSink(t, testConfig(f))
			msgs := testMsgs(0, 50)
			if err := ss.Write(t.Context(), msgs); err != nil {
				t.Fatal(err)
			}
			if err := ss.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
			docs, requests := f.snapshot()
			if len(docs) != 50 || len(dl.got()) != 0 || len(requests) != 4 {
				t.Fatalf("indexed %d, dead-lettered %d, requests %d; want 50, 0, 4", len(docs), len(dl.got()), len(requests))
			}
			if st := s.Stats(); st.RequestErrors != 3 || st.BulkRequests != 4 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestRejectedRequestStopsTheShardSink(t *testing.T) {
	f := newFakeCluster(t)
	f.onRequest = func(int, []string) fault { return fault400 }
	_, ss, dl := newTestSink(t, testConfig(f))
	msgs := testMsgs(0, 5)
	if err := ss.Write(t.Context(), msgs); err != nil {
		t.Fatal(err)
	}
	err := ss.Flush(t.Context())
	if !errors.Is(err, ErrRejected) || !processors.IsPermanent(err) || !strings.Contains(err.Error(), "status 400") {
		t.Fatalf("Flush = %v, want ErrRejected with the status", err)
	}
	if !ss.Durable().IsZero() || len(dl.got()) != 0 {
		t.Fatal("a rejected request advanced Durable or dead-lettered")
	}
	if err := ss.Write(t.Context(), testMsgs(5, 1)); !errors.Is(err, ErrRejected) {
		t.Fatalf("Write after the failure = %v", err)
	}
}

func TestTooLargeRequestsAreSplit(t *testing.T) {
	f := newFakeCluster(t)
	f.onRequest = func(_ int, ids []string) fault {
		if len(ids) > 2 || (len(ids) == 1 && ids[0] == "ev-7") {
			return fault413
		}
		return faultNone
	}
	_, ss, dl := newTestSink(t, testConfig(f))
	msgs := testMsgs(0, 10)
	if err := ss.Write(t.Context(), msgs); err != nil {
		t.Fatal(err)
	}
	if err := ss.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	docs, _ := f.snapshot()
	got := dl.got()
	if len(docs) != 9 || len(got) != 1 || got[0].Event.EventID != "ev-7" || !errors.Is(got[0].Failed().Err, ErrDocumentTooLarge) {
		t.Fatalf("indexed %d, dead-lettered %v; want 9 and ev-7 as too large", len(docs), got)
	}
}

func TestUnparsedMessagesAreDeadLetteredInOrder(t *testing.T) {
	f := newFakeCluster(t)
	_, ss, dl := newTestSink(t, testConfig(f))
	msgs := testMsgs(0, 3)
	msgs[2].Parsed = false
	if err := ss.Write(t.Context(), msgs); err != nil {
		t.Fatal(err)
	}
	if err := ss.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := dl.got(); len(got) != 1 || !errors.Is(got[0].Failed().Err, ErrNotParsed) {
		t.Fatalf("dead-lettered %v", got)
	}
	if ss.Durable() != msgs[2].Position() {
		t.Fatalf("Durable = %v, want the unparsed last message", ss.Durable())
	}
}

// TestDurableNeverPassesAnUnindexedDocument watches Durable while items
// fail at random and checks that, whenever it reports a position, every
// document up to it is indexed.
func TestDurableNeverPassesAnUnindexedDocument(t *testing.T) {
	f := newFakeCluster(t)
	f.onItem = func(id string, sent int) (int, string) {
		if sent < 2 && len(id)%2 == 0 && id[len(id)-1]%3 == 0 {
			return 429, "es_rejected_execution_exception"
		}
		return 201, ""
	}
	f.onRequest = func(n int, _ []string) fault {
		if n%4 == 0 {
			return fault503
		}
		return faultNone
	}
	cfg := testConfig(f)
	cfg.FlushBytes = 2048
	cfg.FlushInterval = 2 * time.Millisecond
	_, ss, _ := newTestSink(t, cfg)
	msgs := testMsgs(0, 300)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var last checkpoint.Position
	var violations []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			p := ss.Durable()
			if !p.IsZero() {
				if !last.IsZero() && checkpoint.Less(p, last) {
					violations = append(violations, "went back from "+last.String()+" to "+p.String())
				}
				last = p
				for _, m := range msgs {
					if checkpoint.Less(p, m.Position()) {
						break
					}
					if !f.hasID(m.Event.EventID) {
						violations = append(violations, "durable "+p.String()+" but "+m.Event.EventID+" is not indexed")
						break
					}
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	for i := 0; i < len(msgs); i += 25 {
		if err := ss.Write(t.Context(), msgs[i:i+25]); err != nil {
			t.Fatal(err)
		}
	}
	if err := ss.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if len(violations) > 0 {
		t.Fatalf("%d violations, first: %s", len(violations), violations[0])
	}
	if ss.Durable() != msgs[299].Position() {
		t.Fatalf("Durable = %v", ss.Durable())
	}
}

func TestCancelStopsRetries(t *testing.T) {
	f := newFakeCluster(t)
	f.onRequest = func(int, []string) fault { return fault503 }
	cfg := testConfig(f)
	s, err := New(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	openCtx, cancelOpen := context.WithCancel(t.Context())
	ss, err := s.Open(openCtx, testShard(), &memDL{})
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	if err := ss.Write(t.Context(), testMsgs(0, 5)); err != nil {
		t.Fatal(err)
	}

	t.Run("Flush returns when its ctx ends", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if err := ss.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Flush = %v", err)
		}
		if !ss.Durable().IsZero() {
			t.Fatal("Durable advanced while every request failed")
		}
	})
	t.Run("the Open ctx stops the retries", func(t *testing.T) {
		cancelOpen()
		if err := ss.Flush(t.Context()); !errors.Is(err, ErrStopped) {
			t.Fatalf("Flush after cancel = %v, want ErrStopped", err)
		}
		before := s.Stats().BulkRequests
		time.Sleep(50 * time.Millisecond)
		if after := s.Stats().BulkRequests; after != before {
			t.Fatalf("requests went on after cancel: %d -> %d", before, after)
		}
	})
}

func TestMaxRetriesFailsTheShardSink(t *testing.T) {
	f := newFakeCluster(t)
	f.onRequest = func(int, []string) fault { return fault503 }
	cfg := testConfig(f)
	cfg.MaxRetries = 2
	_, ss, dl := newTestSink(t, cfg)
	if err := ss.Write(t.Context(), testMsgs(0, 5)); err != nil {
		t.Fatal(err)
	}
	if err := ss.Flush(t.Context()); !errors.Is(err, ErrRetriesExhausted) {
		t.Fatalf("Flush = %v", err)
	}
	if _, requests := f.snapshot(); len(requests) != 3 || len(dl.got()) != 0 {
		t.Fatalf("%d requests, %d dead-lettered; want 3 and 0", len(requests), len(dl.got()))
	}
}

func TestWriteBlocksWhenTheBufferIsFull(t *testing.T) {
	f := newFakeCluster(t)
	f.gate = make(chan struct{})
	cfg := testConfig(f)
	cfg.FlushBytes = 4096
	cfg.MaxBufferBytes = 8192
	_, ss, _ := newTestSink(t, cfg)
	msgs := testMsgs(0, 100) // ~40 KB
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	accepted := 0 // messages Write took before it blocked
	for ; accepted < len(msgs); accepted++ {
		if err := ss.Write(ctx, msgs[accepted:accepted+1]); err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Write into a full buffer with the cluster stuck = %v, want a timeout", err)
			}
			break
		}
	}
	if accepted >= 100 || accepted == 0 {
		t.Fatalf("accepted %d of 100", accepted)
	}
	close(f.gate) // the cluster recovers
	if err := ss.Write(t.Context(), msgs[accepted:]); err != nil {
		t.Fatal(err)
	}
	if err := ss.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if docs, _ := f.snapshot(); len(docs) != 100 {
		t.Fatalf("indexed %d", len(docs))
	}
}

func TestDeadLetterFailureStopsTheShardSink(t *testing.T) {
	f := newFakeCluster(t)
	f.onItem = func(string, int) (int, string) { return 400, "mapper_parsing_exception" }
	_, ss, dl := newTestSink(t, testConfig(f))
	dl.err = errors.New("dead-letter bucket unreachable")
	if err := ss.Write(t.Context(), testMsgs(0, 2)); err != nil {
		t.Fatal(err)
	}
	if err := ss.Flush(t.Context()); err == nil || !strings.Contains(err.Error(), "bucket unreachable") {
		t.Fatalf("Flush = %v", err)
	}
	if !ss.Durable().IsZero() {
		t.Fatal("Durable passed documents that were neither indexed nor dead-lettered")
	}
}

func TestTemplateIsInstalledBeforeTheFirstBulk(t *testing.T) {
	f := newFakeCluster(t)
	f.onTmpl = func(n int) int {
		if n <= 2 {
			return 503 // down at start-up and at the first attempt
		}
		return 200
	}
	_, ss, _ := newTestSink(t, testConfig(f))
	if err := ss.Write(t.Context(), testMsgs(0, 3)); err != nil {
		t.Fatal(err)
	}
	if err := ss.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	log := append([]string(nil), f.log...)
	f.mu.Unlock()
	want := []string{"PUT template leasehold-events", "PUT template leasehold-events", "PUT template leasehold-events", "POST _bulk"}
	if strings.Join(log, ",") != strings.Join(want, ",") {
		t.Fatalf("requests %q, want %q", log, want)
	}
}

func TestTemplateRejectedAtStartIsAnError(t *testing.T) {
	f := newFakeCluster(t)
	f.onTmpl = func(int) int { return 400 }
	_, err := New(t.Context(), testConfig(f), nil)
	if !processors.IsPermanent(err) || !strings.Contains(err.Error(), "template says no") {
		t.Fatalf("New = %v", err)
	}
}

func TestCloseStopsTheFlusher(t *testing.T) {
	f := newFakeCluster(t)
	f.onRequest = func(int, []string) fault { return fault503 }
	_, ss, _ := newTestSink(t, testConfig(f))
	if err := ss.Write(t.Context(), testMsgs(0, 1)); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = ss.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return while requests were failing")
	}
	if err := ss.Write(t.Context(), testMsgs(1, 1)); !errors.Is(err, ErrStopped) {
		t.Fatalf("Write after Close = %v", err)
	}
}
