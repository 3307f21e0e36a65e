package appevent_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/appevent"
	"github.com/leasehold/leasehold/event"
)

// valid is a complete, valid app event.
const valid = `{
  "event_id": "01HX5ZK4W5J9Q2X7R3M8N6P0AB",
  "event_type": "download",
  "occurred_at": "2024-05-01T12:00:00.250+02:00",
  "asset_id": "asset-8f14e45f",
  "tenant_id": "acme",
  "user_id": "u-42",
  "client_ip": "2001:db8::7",
  "user_agent": "Mozilla/5.0 (Macintosh)",
  "referrer": "https://www.Example.com/share/x",
  "properties": { "format": "webm", "size": [1920, 1080], "note": "<b>" }
}`

// with returns valid with its fields edited: a nil value deletes the field,
// a json.RawMessage is inserted verbatim.
func with(t testing.TB, edits map[string]any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(valid), &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range edits {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestParseValid(t *testing.T) {
	ev, unknown, err := appevent.ParseWithUnknown([]byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	if unknown != nil {
		t.Fatalf("unknown = %q, want none", unknown)
	}
	want := event.Event{
		EventTime:       time.Date(2024, 5, 1, 10, 0, 0, 250e6, time.UTC),
		EventType:       event.TypeDownload,
		EventID:         "01HX5ZK4W5J9Q2X7R3M8N6P0AB",
		Source:          event.SourceApp,
		AssetID:         "asset-8f14e45f",
		Tenant:          "acme",
		UserID:          "u-42",
		ClientIP:        "2001:db8::7",
		Referrer:        "https://www.Example.com/share/x",
		ReferringDomain: "example.com",
		UserAgent:       "Mozilla/5.0 (Macintosh)",
		Properties:      json.RawMessage(`{"format":"webm","size":[1920,1080],"note":"<b>"}`),
	}
	if !reflect.DeepEqual(ev, want) {
		t.Fatalf("event\n got: %s\nwant: %s", ev.AppendJSON(nil), want.AppendJSON(nil))
	}
	if err := ev.Validate(); err != nil {
		t.Fatal(err)
	}
	if ev.EventTime.Location() != time.UTC {
		t.Fatalf("event_time %v is not UTC", ev.EventTime)
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name  string
		edits map[string]any
		check func(t *testing.T, ev event.Event)
	}{
		{"only required fields", map[string]any{"user_id": nil, "client_ip": nil, "user_agent": nil, "referrer": nil, "properties": nil}, func(t *testing.T, ev event.Event) {
			if ev.UserID != "" || ev.Properties != nil {
				t.Fatalf("optional fields set: %+v", ev)
			}
		}},
		{"nulls for optional fields", map[string]any{"user_id": json.RawMessage("null"), "properties": json.RawMessage("null")}, func(t *testing.T, ev event.Event) {
			if ev.UserID != "" || ev.Properties != nil {
				t.Fatalf("optional fields set: %+v", ev)
			}
		}},
		{"every event type", map[string]any{"event_type": "permission_change"}, func(t *testing.T, ev event.Event) {
			if ev.EventType != event.TypePermissionChange {
				t.Fatalf("event_type = %q", ev.EventType)
			}
		}},
		{"no fractional seconds", map[string]any{"occurred_at": "2024-05-01T10:00:00Z"}, func(t *testing.T, ev event.Event) {
			if !ev.EventTime.Equal(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)) {
				t.Fatalf("event_time = %v", ev.EventTime)
			}
		}},
		{"max length id", map[string]any{"event_id": strings.Repeat("a", 128)}, func(t *testing.T, ev event.Event) {}},
		{"unicode ids counted in characters", map[string]any{"asset_id": strings.Repeat("é", 256)}, func(t *testing.T, ev event.Event) {}},
		{"empty properties dropped", map[string]any{"properties": map[string]any{}}, func(t *testing.T, ev event.Event) {
			if ev.Properties != nil {
				t.Fatalf("properties = %s", ev.Properties)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := appevent.Parse(with(t, tc.edits))
			if err != nil {
				t.Fatal(err)
			}
			if err := ev.Validate(); err != nil {
				t.Fatal(err)
			}
			tc.check(t, ev)
		})
	}
}

func TestParseRejects(t *testing.T) {
	huge := strings.Repeat("x", 1<<20)
	tests := []struct {
		name string
		body []byte
		// want lists "field: message fragment" for every expected problem.
		want []string
	}{
		{"empty body", nil, []string{": body is empty"}},
		{"whitespace body", []byte(" \n\t"), []string{": body is empty"}},
		{"invalid JSON", []byte(`{"event_id": "a",`), []string{": invalid JSON"}},
		{"truncated value", []byte(`{"event_id": "a`), []string{": invalid JSON"}},
		{"trailing data", []byte(valid + ` {}`), []string{": data after the object"}},
		{"array body", []byte(`[1,2]`), []string{": body must be a JSON object, got an array"}},
		{"string body", []byte(`"hi"`), []string{": body must be a JSON object, got a string"}},
		{"null body", []byte(`null`), []string{": body must be a JSON object, got null"}},
		{"huge body", []byte(`{"event_id":"` + huge + `"}`), []string{": body is 1048591 bytes, limit is 65536"}},
		{"empty object lists every required field", []byte(`{}`), []string{
			"event_id: is required", "event_type: is required", "occurred_at: is required",
			"asset_id: is required", "tenant_id: is required"}},
		{"wrong types", with(t, map[string]any{"event_id": 42, "event_type": true, "occurred_at": 1714557600,
			"asset_id": []int{1}, "tenant_id": map[string]int{}, "client_ip": 1, "properties": []int{}}), []string{
			"event_id: must be a string, got a number", "event_type: must be a string, got a boolean",
			"occurred_at: must be a string, got a number", "asset_id: must be a string, got an array",
			"tenant_id: must be a string, got an object", "client_ip: must be a string, got a number",
			"properties: must be an object, got an array"}},
		{"null required field", with(t, map[string]any{"tenant_id": json.RawMessage("null")}), []string{"tenant_id: is required"}},
		{"empty required strings", with(t, map[string]any{"event_id": "", "asset_id": ""}), []string{
			"event_id: must not be empty", "asset_id: must not be empty"}},
		{"unknown event type", with(t, map[string]any{"event_type": "request"}), []string{`event_type: "request" is not one of`}},
		{"bad time", with(t, map[string]any{"occurred_at": "2024-05-01 10:00:00"}), []string{"occurred_at: \"2024-05-01 10:00:00\" is not an RFC 3339"}},
		{"time without zone", with(t, map[string]any{"occurred_at": "2024-05-01T10:00:00"}), []string{"occurred_at: "}},
		{"year zero", with(t, map[string]any{"occurred_at": "0000-01-01T00:00:00Z"}), []string{"occurred_at: \"0000-01-01T00:00:00Z\" is outside"}},
		{"long event id", with(t, map[string]any{"event_id": strings.Repeat("a", 129)}), []string{"event_id: is 129 characters, limit is 128"}},
		{"event id with space", with(t, map[string]any{"event_id": "a b"}), []string{"event_id: must be visible ASCII"}},
		{"event id non-ascii", with(t, map[string]any{"event_id": "é"}), []string{"event_id: must be visible ASCII"}},
		{"control char in tenant", with(t, map[string]any{"tenant_id": "ac\x00me"}), []string{"tenant_id: must not contain control characters"}},
		{"huge user agent", with(t, map[string]any{"user_agent": strings.Repeat("x", 3000)}), []string{"user_agent: is 3000 characters, limit is 2048"}},
		{"long referrer", with(t, map[string]any{"referrer": strings.Repeat("x", 4097)}), []string{"referrer: is 4097 characters"}},
		{"bad ip", with(t, map[string]any{"client_ip": "10.0.0.256"}), []string{`client_ip: "10.0.0.256" is not an IPv4 or IPv6 address`}},
		{"huge properties", with(t, map[string]any{"properties": map[string]string{"blob": strings.Repeat("x", 20000)}}), []string{
			"properties: is 20011 bytes, limit is 16384"}},
		{"duplicate key still checks every field", []byte(`{"event_id":"a","event_id":"b","event_type":"view"}`), []string{
			"event_id: appears more than once", "occurred_at: is required", "asset_id: is required", "tenant_id: is required"}},
		{"all problems at once", with(t, map[string]any{"event_id": nil, "event_type": "click", "client_ip": "x"}), []string{
			"event_id: is required", `event_type: "click"`, `client_ip: "x"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := appevent.Parse(tc.body)
			var ve *appevent.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want *ValidationError", err)
			}
			if !errors.Is(err, appevent.ErrInvalid) {
				t.Fatalf("err does not wrap ErrInvalid")
			}
			if !reflect.DeepEqual(ev, event.Event{}) {
				t.Fatalf("got a non-zero event with an error: %+v", ev)
			}
			var got []string
			for _, p := range ve.Problems {
				got = append(got, p.Field+": "+p.Message)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("problems %q, want %d like %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) && !strings.Contains(got[i], w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

func TestUnknownFieldsIgnoredAndReported(t *testing.T) {
	body := with(t, map[string]any{"session": "s-1", "zz_new": 1, "Event_ID": "x"})
	ev, unknown, err := appevent.ParseWithUnknown(body)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(unknown, ",") != "Event_ID,session,zz_new" { // json.Marshal sorts keys
		t.Fatalf("unknown = %q", unknown)
	}
	if ev.EventID != "01HX5ZK4W5J9Q2X7R3M8N6P0AB" {
		t.Fatalf("a differently cased key changed event_id: %q", ev.EventID)
	}
}

func TestValidationErrorMessage(t *testing.T) {
	e := &appevent.ValidationError{Problems: []appevent.Problem{{"", "body is empty"}, {"event_id", "is required"}}}
	if got := e.Error(); got != "appevent: invalid event: body is empty; event_id: is required" {
		t.Fatalf("Error() = %q", got)
	}
}

func TestParsedEventEncodes(t *testing.T) {
	ev, err := appevent.Parse([]byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	var back event.Event
	if err := json.Unmarshal(ev.AppendJSON(nil), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, ev) {
		t.Fatalf("round trip changed the event:\n%+v\n%+v", back, ev)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(valid))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"properties":{"a":"\xff"}}`))
	f.Add([]byte(`{"event_id":"a","event_id":1`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := appevent.Parse(data)
		if err != nil {
			var ve *appevent.ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("err = %v, want a non-empty *ValidationError", err)
			}
			return
		}
		if err := ev.Validate(); err != nil {
			t.Fatalf("accepted event does not validate: %v", err)
		}
		if !json.Valid(ev.AppendJSON(nil)) {
			t.Fatal("accepted event encodes to invalid JSON")
		}
	})
}

func BenchmarkParse(b *testing.B) {
	b.SetBytes(int64(len(valid)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := appevent.Parse([]byte(valid)); err != nil {
			b.Fatal(err)
		}
	}
}
