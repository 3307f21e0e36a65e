package transform_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/leasehold/leasehold/appevent"
	"github.com/leasehold/leasehold/cloudfront"
	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/processors/transform"
)

const (
	cfLine   = "2019-12-04\t21:02:31\tLAX1\t392\t89.160.20.112\tGET\td111111abcdef8.cloudfront.net\t/assets/a-1/film.mp4\t200\t-\tcurl/7.55.1\t-\t-\tHit\tSOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==\tmedia.example.com\thttps\t23\t0.001\t-\tTLSv1.2\tECDHE-RSA-AES128-GCM-SHA256\tHit\tHTTP/2.0\t-\t-\t11040\t0.001\tHit\tvideo/mp4\t78\t-\t-"
	appEvent = `{"event_id":"e-1","event_type":"share","occurred_at":"2026-11-25T10:00:00+01:00","asset_id":"a-9","tenant_id":"acme","client_ip":"81.2.69.142"}`
	rtLine   = "1575493351.123\t216.160.83.56\t200\tGET\t/assets/a-2/x.jpg?w=100\trt-id-1"
)

var rtFields = []string{"timestamp", "c-ip", "sc-status", "cs-method", "cs-uri-stem", "x-edge-request-id"}

func TestParserFormats(t *testing.T) {
	tests := []struct {
		name    string
		opts    transform.ParserOptions
		data    string
		wantID  string
		wantSrc event.Source
		wantErr error
	}{
		{"auto cloudfront", transform.ParserOptions{}, cfLine, "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==", event.SourceCloudFront, nil},
		{"auto app", transform.ParserOptions{Format: "auto"}, appEvent, "e-1", event.SourceApp, nil},
		{"auto app with leading space", transform.ParserOptions{}, " \n" + appEvent, "e-1", event.SourceApp, nil},
		{"auto bad json", transform.ParserOptions{}, `{"event_id":`, "", "", appevent.ErrInvalid},
		{"auto bad line", transform.ParserOptions{}, "not\ta\tlog line", "", "", cloudfront.ErrFieldCount},
		{"auto empty", transform.ParserOptions{}, "", "", "", cloudfront.ErrRecord},
		{"cloudfront", transform.ParserOptions{Format: "cloudfront"}, cfLine, "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==", event.SourceCloudFront, nil},
		{"cloudfront rejects json", transform.ParserOptions{Format: "cloudfront"}, appEvent, "", "", cloudfront.ErrFieldCount},
		{"app", transform.ParserOptions{Format: "app"}, appEvent, "e-1", event.SourceApp, nil},
		{"app rejects a line", transform.ParserOptions{Format: "app"}, cfLine, "", "", appevent.ErrInvalid},
		{"realtime", transform.ParserOptions{Format: "cloudfront_realtime", Fields: rtFields}, rtLine, "rt-id-1", event.SourceCloudFront, nil},
		{"realtime bad", transform.ParserOptions{Format: "cloudfront_realtime", Fields: rtFields}, "x\ty", "", "", cloudfront.ErrFieldCount},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := transform.NewParser(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			batch := messages([]byte(tc.data))
			out, err := p.Process(context.Background(), batch)
			if err != nil {
				t.Fatalf("Process: %v (a parse error must never be a batch error)", err)
			}
			if len(out) != 1 || out[0] != batch[0] {
				t.Fatalf("Process returned %d messages, want the one given (failed ones too, for dead-lettering)", len(out))
			}
			m := out[0]
			if tc.wantErr != nil {
				f := m.Failed()
				if f == nil || m.Parsed {
					t.Fatalf("want a failed, unparsed message; failure %v parsed %v", f, m.Parsed)
				}
				if f.Stage != "parse" || f.Attempts != 1 || !errors.Is(f.Err, tc.wantErr) {
					t.Fatalf("failure %+v, want stage parse, 1 attempt, %v", f, tc.wantErr)
				}
				return
			}
			if f := m.Failed(); f != nil {
				t.Fatalf("failed: %v", f.Err)
			}
			if !m.Parsed || m.Event.EventID != tc.wantID || m.Event.Source != tc.wantSrc {
				t.Fatalf("parsed %v id %q source %q, want id %q source %q", m.Parsed, m.Event.EventID, m.Event.Source, tc.wantID, tc.wantSrc)
			}
			want := event.SourceRecord{Stream: "events", ShardID: "shardId-000000000001", SequenceNumber: "49590000"}
			if m.Event.SourceRecord != want {
				t.Fatalf("source record %+v, want %+v", m.Event.SourceRecord, want)
			}
			if err := m.Event.Validate(); err != nil {
				t.Fatalf("parsed event invalid: %v", err)
			}
		})
	}
}

func TestParserKeepsSubSequenceAndSkipsParsed(t *testing.T) {
	p, err := transform.NewParser(transform.ParserOptions{})
	if err != nil {
		t.Fatal(err)
	}
	batch := messages([]byte(cfLine), []byte("garbage"))
	batch[0].Record.SubSequenceNumber = 7
	batch[1].Parsed = true // parsed by an earlier stage: left alone
	batch[1].Event.EventID = "kept"
	if _, err := p.Process(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if got := batch[0].Event.SourceRecord.SubSequenceNumber; got != 7 {
		t.Fatalf("sub-sequence %d, want 7", got)
	}
	if batch[1].Failed() != nil || batch[1].Event.EventID != "kept" {
		t.Fatalf("an already parsed message was parsed again: %+v", batch[1].Failed())
	}
}

func TestParserFixture(t *testing.T) {
	p, err := transform.NewParser(transform.ParserOptions{Format: "cloudfront"})
	if err != nil {
		t.Fatal(err)
	}
	recs := fixtureRecords(t)
	out, err := p.Process(context.Background(), messages(recs...))
	if err != nil {
		t.Fatal(err)
	}
	var failed int
	for _, m := range out {
		if m.Failed() != nil {
			failed++
			if !errors.Is(m.Failed().Err, cloudfront.ErrFieldCount) {
				t.Errorf("unexpected failure: %v", m.Failed().Err)
			}
		}
	}
	if failed != 1 || len(out) != len(recs) {
		t.Fatalf("%d of %d failed, want exactly the truncated line", failed, len(out))
	}
}

func TestParserOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		opts transform.ParserOptions
		want string // the option the error must name
	}{
		{"unknown format", transform.ParserOptions{Format: "csv"}, `format: unknown format "csv"; valid: auto, cloudfront, app, cloudfront_realtime`},
		{"realtime without fields", transform.ParserOptions{Format: "cloudfront_realtime"}, "fields: format cloudfront_realtime needs"},
		{"realtime unknown field", transform.ParserOptions{Format: "cloudfront_realtime", Fields: []string{"timestamp", "c-ipp"}}, `fields: cloudfront: unknown real-time field "c-ipp"`},
		{"fields with another format", transform.ParserOptions{Format: "app", Fields: rtFields}, "fields: applies only to format cloudfront_realtime"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := transform.NewParser(tc.opts)
			if !errors.Is(err, transform.ErrOption) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrOption containing %q", err, tc.want)
			}
		})
	}
}
