package collector

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/leasehold/leasehold/appevent"
	"github.com/leasehold/leasehold/collector/spool"
	"github.com/leasehold/leasehold/internal/failpoint"
	"github.com/leasehold/leasehold/producer"
)

// minBodyBytes is the smallest MaxBodyBytes: one event of the largest size.
const minBodyBytes = appevent.MaxBodyBytes

// Content types the collector takes.
const (
	// ContentTypeJSON is one event: the whole body is one JSON object.
	ContentTypeJSON = "application/json"
	// ContentTypeNDJSON is a batch: one JSON object per line, blank lines
	// skipped.
	ContentTypeNDJSON = "application/x-ndjson"
)

// Response is the JSON body of every answer.
type Response struct {
	// Accepted counts the events of the request now in the producer's
	// buffer: all of them on 202, otherwise 0 (except on a 503 or 500 in
	// the case Error describes).
	Accepted int `json:"accepted"`
	// Rejected lists every invalid event (400), in line order; empty
	// otherwise.
	Rejected []Rejected `json:"rejected"`
	// Error says why the request was not accepted; absent on 202.
	Error string `json:"error,omitempty"`
}

// reply is the outcome of one request.
type reply struct {
	status     int
	body       Response
	retryAfter bool   // a 503: set Retry-After
	allow      string // a 405: set Allow
	// events counts the request's events by outcome, for metrics.
	accepted, invalid, batch, unavailable int
}

func fail(status int, format string, args ...any) reply {
	return reply{status: status, body: Response{Error: fmt.Sprintf(format, args...)}}
}

// ServeHTTP handles POST /v1/events (see Response and the package
// documentation). It blocks until the request's events are in the
// producer's buffer, or for at most Config.BufferWait when the buffer is
// full. Safe for concurrent use.
func (c *Collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	c.m.inFlight.Inc()
	defer c.m.inFlight.Dec()
	rep := c.handle(w, r)
	if rep.body.Rejected == nil {
		rep.body.Rejected = []Rejected{}
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	switch {
	case rep.status == http.StatusUnauthorized:
		h.Set("WWW-Authenticate", `Bearer realm="leasehold"`)
	case rep.retryAfter:
		h.Set("Retry-After", strconv.Itoa(int((c.cfg.RetryAfter+time.Second-1)/time.Second)))
	case rep.allow != "":
		h.Set("Allow", rep.allow)
	}
	w.WriteHeader(rep.status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // messages quote user input and "<token>"; this is not HTML
	if err := enc.Encode(rep.body); err != nil {
		c.log.Debug("write response", zap.Error(err))
	}
	c.m.observe(rep, time.Since(start))
}

// handle decides the answer to r, putting its events into the producer
// when the request is acceptable. w is only for http.MaxBytesReader.
func (c *Collector) handle(w http.ResponseWriter, r *http.Request) reply {
	if r.URL.Path != Path {
		return fail(http.StatusNotFound, "no such path %q; events go to POST %s", r.URL.Path, Path)
	}
	if !c.authorized(r) {
		return fail(http.StatusUnauthorized, "missing or wrong bearer token (Authorization: Bearer <token>)")
	}
	if r.Method != http.MethodPost {
		rep := fail(http.StatusMethodNotAllowed, "method %s not allowed; use POST", r.Method)
		rep.allow = http.MethodPost
		return rep
	}
	single, rep, ok := contentType(r)
	if !ok {
		return rep
	}
	if r.ContentLength > c.cfg.MaxBodyBytes {
		return fail(http.StatusRequestEntityTooLarge, "body is %d bytes, limit is %d", r.ContentLength, c.cfg.MaxBodyBytes)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, c.cfg.MaxBodyBytes))
	if err != nil {
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			return fail(http.StatusRequestEntityTooLarge, "body is over the %d-byte limit", c.cfg.MaxBodyBytes)
		}
		return fail(http.StatusBadRequest, "reading the body: %v", err)
	}

	var lines []line
	if single {
		if b := bytes.TrimSpace(body); len(b) > 0 {
			lines = []line{{n: 1, data: b}}
		}
	} else {
		lines = splitLines(body)
	}
	switch {
	case len(lines) == 0:
		return fail(http.StatusBadRequest, "no events: the body is empty")
	case len(lines) > c.cfg.MaxEventsPerRequest:
		return fail(http.StatusRequestEntityTooLarge, "%d events, limit is %d per request", len(lines), c.cfg.MaxEventsPerRequest)
	}

	events := make([]valid, 0, len(lines))
	var rejected []Rejected
	size := 0
	for _, l := range lines {
		v, rej := check(l, c.cfg.PartitionBy)
		if rej != nil {
			rejected = append(rejected, *rej)
			continue
		}
		events = append(events, v)
		size += v.size()
	}
	if len(rejected) > 0 {
		rep := fail(http.StatusBadRequest, "%d of %d events are invalid; nothing was accepted", len(rejected), len(lines))
		rep.body.Rejected = rejected
		rep.invalid, rep.batch = len(rejected), len(events)
		return rep
	}
	return c.admit(r.Context(), events, size)
}

// authorized reports whether r carries the configured bearer token (or
// none is configured). Both sides are hashed first so the comparison
// takes the same time whatever the lengths.
func (c *Collector) authorized(r *http.Request) bool {
	if !c.hasToken {
		return true
	}
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(got[:], c.token[:]) == 1
}

// contentType reads r's Content-Type: single is true for one JSON event.
// ok is false, with the answer, for a type or encoding the collector does
// not take.
func contentType(r *http.Request) (single bool, rep reply, ok bool) {
	if enc := r.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
		return false, fail(http.StatusUnsupportedMediaType, "Content-Encoding %q not supported; send the body uncompressed", enc), false
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case err == nil && mt == ContentTypeJSON:
		return true, reply{}, true
	case err == nil && (mt == ContentTypeNDJSON || mt == "application/ndjson"):
		return false, reply{}, true
	}
	return false, fail(http.StatusUnsupportedMediaType, "Content-Type %q not supported; use %s (one event) or %s (one event per line)",
		r.Header.Get("Content-Type"), ContentTypeJSON, ContentTypeNDJSON), false
}

// admit takes room for all events in the budget, waiting up to BufferWait,
// and puts them into the producer.
func (c *Collector) admit(ctx context.Context, events []valid, size int) reply {
	unavailable := func(format string, args ...any) reply {
		rep := fail(http.StatusServiceUnavailable, format, args...)
		rep.retryAfter = true
		rep.unavailable = len(events)
		return rep
	}
	if c.cfg.BufferWait == 0 {
		if !c.budget.tryAcquire(len(events), size) {
			return unavailable("buffer full; nothing was accepted, send the request again after Retry-After")
		}
	} else {
		wctx, cancel := context.WithTimeout(ctx, c.cfg.BufferWait)
		err := c.budget.acquire(wctx, len(events), size)
		cancel()
		if err != nil {
			return unavailable("buffer full for %v; nothing was accepted, send the request again after Retry-After", c.cfg.BufferWait)
		}
	}

	// With a spool, the events are on disk before anything else: the 202
	// promises they survive a crash.
	var firstID uint64
	if c.spool != nil {
		entries := make([]spool.Entry, len(events))
		for i, ev := range events {
			entries[i] = spool.Entry{PartitionKey: ev.key, Data: ev.data}
		}
		began := time.Now()
		id, err := c.spool.Append(entries)
		c.m.spoolAppend.Observe(time.Since(began).Seconds())
		if err != nil {
			c.budget.release(len(events), size)
			c.log.Error("spool append failed; answering 503", zap.Int("events", len(events)), zap.Error(err))
			return unavailable("could not store the events durably; nothing was accepted, send the request again after Retry-After")
		}
		firstID = id
		failpoint.Hit(failpoint.CollectorAfterSpool)
	}

	// Not the request's context: the room is taken, so finishing the
	// request even if the client has gone keeps it all-or-nothing.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), putTimeout)
	defer cancel()
	for i, ev := range events {
		ref := EventRef{EventID: ev.id}
		if c.spool != nil {
			ref.SpoolID = firstID + uint64(i)
		}
		err := c.prod.PutRecord(pctx, producer.Record{PartitionKey: ev.key, Data: ev.data, Meta: ref})
		if err == nil {
			continue
		}
		rest := 0
		for j, e := range events[i:] {
			rest += e.size()
			if c.spool != nil { // not accepted: the next start must not send it
				c.spool.Done(firstID + uint64(i+j))
			}
		}
		c.budget.release(len(events)-i, rest)
		part := "nothing was accepted; send the request again"
		if i > 0 {
			part = fmt.Sprintf("the first %d events (up to line %d) were accepted, the rest were not; send the rest again", i, events[i-1].line)
		}
		var rep reply
		if errors.Is(err, producer.ErrClosed) {
			rep = unavailable("the collector is shutting down: %s", part)
		} else {
			c.log.Error("put event", zap.String("event_id", ev.id), zap.Error(err))
			rep = fail(http.StatusInternalServerError, "internal error: %s", part)
		}
		rep.body.Accepted = i
		rep.accepted = i
		rep.unavailable = len(events) - i
		return rep
	}
	return reply{status: http.StatusAccepted, body: Response{Accepted: len(events)}, accepted: len(events)}
}
