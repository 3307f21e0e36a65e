// Package ingesttest provides fakes for testing code that uses package
// ingest: an in-memory Manifest with the DynamoDB manifest's semantics,
// the conformance suite both run, and an in-memory S3 holding objects.
package ingesttest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/leasehold/leasehold/ingest"
)

// Manifest is an in-memory ingest.Manifest. It is safe for concurrent use.
// Fail, if set before use, is asked before every write (op is "begin",
// "renew", "release", "checkpoint" or "finish"); a non-nil error fails the
// write, which then changes nothing.
type Manifest struct {
	Fail func(op, url string) error // optional fault injection, see above

	mu      sync.Mutex
	entries map[string]ingest.Entry
	writes  int
}

// NewManifest returns an empty manifest.
func NewManifest() *Manifest { return &Manifest{entries: map[string]ingest.Entry{}} }

// EnsureTable does nothing.
func (m *Manifest) EnsureTable(context.Context) error { return nil }

// Get implements ingest.Manifest.
func (m *Manifest) Get(_ context.Context, url string) (ingest.Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[url]
	if !ok {
		return ingest.Entry{}, fmt.Errorf("get manifest entry %s: %w", url, ingest.ErrNotFound)
	}
	return e, nil
}

// Begin implements ingest.Manifest.
func (m *Manifest) Begin(_ context.Context, url, etag, owner string, takeOver int64) (ingest.Entry, error) {
	if owner == "" {
		return ingest.Entry{}, fmt.Errorf("begin manifest entry %s: empty owner", url)
	}
	if err := m.fail("begin", url); err != nil {
		return ingest.Entry{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes++
	cur, ok := m.entries[url]
	switch {
	case !ok || cur.ETag != etag:
		cur = ingest.Entry{URL: url, ETag: etag, State: ingest.StatePending, Attempts: 1, ClaimVersion: cur.ClaimVersion}
	case cur.State == ingest.StateDone:
		return cur, nil
	case cur.Owner != "" && cur.Owner != owner && cur.ClaimVersion != takeOver:
		return ingest.Entry{}, &ingest.ClaimedError{Entry: cur}
	default:
		cur.State, cur.Error = ingest.StatePending, ""
		cur.Attempts++
	}
	cur.Owner = owner
	cur.ClaimVersion++
	cur.Updated = time.Now()
	m.entries[url] = cur
	return cur, nil
}

// Renew implements ingest.Manifest.
func (m *Manifest) Renew(_ context.Context, url, etag, owner string) error {
	if err := m.fail("renew", url); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes++
	cur, ok := m.entries[url]
	if !ok || cur.ETag != etag || cur.Owner != owner {
		return fmt.Errorf("renew claim on %s: %w", url, ingest.ErrConflict)
	}
	cur.ClaimVersion++
	cur.Updated = time.Now()
	m.entries[url] = cur
	return nil
}

// Release implements ingest.Manifest.
func (m *Manifest) Release(_ context.Context, url, etag, owner string) error {
	if err := m.fail("release", url); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes++
	cur, ok := m.entries[url]
	if !ok || cur.ETag != etag || cur.Owner != owner {
		return fmt.Errorf("release claim on %s: %w", url, ingest.ErrConflict)
	}
	cur.Owner = ""
	cur.Updated = time.Now()
	m.entries[url] = cur
	return nil
}

// Checkpoint implements ingest.Manifest.
func (m *Manifest) Checkpoint(_ context.Context, url, etag, owner string, line int, records int64) error {
	if err := m.fail("checkpoint", url); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes++
	cur, ok := m.entries[url]
	if !ok || cur.ETag != etag || cur.State != ingest.StatePending || cur.Owner != owner || cur.Line > line {
		return fmt.Errorf("checkpoint %s at line %d: %w", url, line, ingest.ErrConflict)
	}
	cur.Line, cur.Records, cur.Updated = line, records, time.Now()
	m.entries[url] = cur
	return nil
}

// Finish implements ingest.Manifest.
func (m *Manifest) Finish(_ context.Context, e ingest.Entry) error {
	if e.State != ingest.StateDone && e.State != ingest.StateFailed {
		return fmt.Errorf("finish manifest entry %s: state %q is not done or failed", e.URL, e.State)
	}
	if err := m.fail("finish", e.URL); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes++
	cur, ok := m.entries[e.URL]
	held := cur.Owner == e.Owner && e.Owner != ""
	switch {
	case !ok || cur.ETag != e.ETag,
		e.State == ingest.StateFailed && (cur.State == ingest.StateDone || !held),
		e.State == ingest.StateDone && !held && cur.State != ingest.StateDone:
		return fmt.Errorf("finish manifest entry %s as %s: %w", e.URL, e.State, ingest.ErrConflict)
	}
	cur.State, cur.Line, cur.Records, cur.BadLines, cur.Error, cur.Updated = e.State, e.Line, e.Records, e.BadLines, e.Error, time.Now()
	cur.Owner = ""
	m.entries[e.URL] = cur
	return nil
}

// Entries returns a copy of every entry, by URL.
func (m *Manifest) Entries() map[string]ingest.Entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]ingest.Entry, len(m.entries))
	for k, v := range m.entries {
		out[k] = v
	}
	return out
}

// Writes returns how many writes (Begin, Checkpoint, Finish) were applied
// or refused by a condition.
func (m *Manifest) Writes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.writes
}

func (m *Manifest) fail(op, url string) error {
	if m.Fail == nil {
		return nil
	}
	return m.Fail(op, url)
}
