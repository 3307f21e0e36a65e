package searchbulk

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestIndexPatternTime(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          time.Time
		ok            bool
	}{
		{"leasehold-events-{yyyy.MM.dd}", "leasehold-events-2026.12.04", time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC), true},
		{"ev-{yyyy.MM.dd-HH}", "ev-2026.12.04-17", time.Date(2026, 12, 4, 17, 0, 0, 0, time.UTC), true},
		{"ev-{yyyy}-x-{MM}", "ev-2026-x-03", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), true},
		{"leasehold-events-{yyyy.MM.dd}", "leasehold-events-2026.12.04-restored", time.Time{}, false}, // another index the wildcard matches
		{"leasehold-events-{yyyy.MM.dd}", "leasehold-events-2026.13.04", time.Time{}, false},
		{"leasehold-events-{yyyy.MM.dd}", "other-2026.12.04", time.Time{}, false},
	}
	for _, tt := range tests {
		p, err := ParseIndexPattern(tt.pattern)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := p.Time(tt.name)
		if ok != tt.ok || !got.Equal(tt.want) {
			t.Errorf("%s.Time(%s) = %v, %v; want %v, %v", tt.pattern, tt.name, got, ok, tt.want, tt.ok)
		}
	}
	for pat, want := range map[string]bool{"a-{yyyy.MM.dd}": true, "a_{yyyy.MM.dd}": false, "a-{yyyy.MM}": false, "a-{yyyy.MM.dd}-x": false} {
		p, _ := ParseIndexPattern(pat)
		if p.DatedSuffix() != want {
			t.Errorf("%s.DatedSuffix() = %v", pat, !want)
		}
	}
}

// fakeIndices is a cluster's index list; deletes of a missing index
// succeed, as DeleteIndex promises.
type fakeIndices struct {
	mu      sync.Mutex
	names   map[string]bool
	deletes map[string]int // deletes of an existing index
	listErr error
}

func (f *fakeIndices) ListIndices(_ context.Context, wildcard string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErr != nil {
		return nil, f.listErr
	}
	var out []string
	for n := range f.names {
		if strings.HasPrefix(n, strings.TrimSuffix(wildcard, "*")) {
			out = append(out, n)
		}
	}
	return out, nil
}

func (f *fakeIndices) DeleteIndex(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.names[name] {
		f.deletes[name]++
		delete(f.names, name)
	}
	return nil
}

// Only whole periods older than Days go, by the date in the name; the
// current day survives whatever the hour; names the pattern does not
// make are left alone; workers pruning at once delete each index once.
func TestPruner(t *testing.T) {
	p, _ := ParseIndexPattern("ev-{yyyy.MM.dd}")
	f := &fakeIndices{deletes: map[string]int{}, names: map[string]bool{
		"ev-2026.11.20": true, "ev-2026.11.30": true, "ev-2026.12.01": true, "ev-2026.12.02": true,
		"ev-2026.12.04": true, "ev-2026.11.20-restored": true, "ev-legacy": true,
	}}
	now := time.Date(2026, 12, 4, 23, 59, 0, 0, time.UTC) // 3 days: 12.01 ended 2d 0h 1m ago → kept; 11.30 ended 3d 0h 1m ago → gone
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			pr := &Pruner{Days: 3, Interval: time.Hour, Pattern: p, Indices: f, Now: func() time.Time { return now }}
			if _, err := pr.Prune(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var left []string
	for n := range f.names {
		left = append(left, n)
	}
	sort.Strings(left)
	if got := strings.Join(left, " "); got != "ev-2026.11.20-restored ev-2026.12.01 ev-2026.12.02 ev-2026.12.04 ev-legacy" {
		t.Fatalf("left %s", got)
	}
	for n, c := range f.deletes {
		if c != 1 {
			t.Errorf("%s deleted %d times", n, c)
		}
	}
	f.listErr = errors.New("boom")
	if _, err := (&Pruner{Days: 3, Pattern: p, Indices: f}).Prune(context.Background()); err == nil {
		t.Error("a failed list is not reported")
	}
}

// fakeLifecycle records what Setup installs.
type fakeLifecycle struct {
	fakeIndices
	api      string
	has      bool
	settings map[string]any
	policies []string
	template []byte
}

func (f *fakeLifecycle) LifecycleAPI(context.Context) (string, bool, error) { return f.api, f.has, nil }
func (f *fakeLifecycle) PutPolicy(_ context.Context, name string, days int, _ IndexPattern) error {
	f.policies = append(f.policies, name)
	return nil
}
func (f *fakeLifecycle) PolicySettings(string, IndexPattern) map[string]any { return f.settings }
func (f *fakeLifecycle) PutTemplate(_ context.Context, _ string, body []byte) error {
	f.template = body
	return nil
}

func TestSetup(t *testing.T) {
	p, _ := ParseIndexPattern("ev-{yyyy.MM.dd}")
	tests := []struct {
		name         string
		has          bool
		settings     map[string]any
		template     bool
		mode         string
		wantPolicy   bool
		wantPruner   bool
		wantInTmpl   string
		wantErrMatch string
	}{
		{name: "ILM: policy attached by the template", has: true, settings: map[string]any{"lifecycle": map[string]any{"name": "ev"}}, template: true, mode: RetentionAuto, wantPolicy: true, wantInTmpl: `"lifecycle":{"name":"ev"}`},
		{name: "ISM: policy attaches itself, no template needed", has: true, mode: RetentionAuto, wantPolicy: true},
		{name: "ILM without a template: fallback", has: true, settings: map[string]any{"lifecycle": 1}, mode: RetentionAuto, wantPruner: true},
		{name: "no lifecycle: fallback", template: true, mode: RetentionAuto, wantPruner: true},
		{name: "delete mode skips the lifecycle", has: true, template: true, mode: RetentionDelete, wantPruner: true},
		{name: "lifecycle mode needs it", template: true, mode: RetentionLifecycle, wantErrMatch: "has no ILM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeLifecycle{fakeIndices: fakeIndices{names: map[string]bool{}, deletes: map[string]int{}}, api: "ILM", has: tt.has, settings: tt.settings}
			s := &Setup{Retention: Retention{Days: 7, Mode: tt.mode, Policy: "ev", Interval: time.Hour}, Pattern: p, TemplateName: "ev", Cluster: f}
			if tt.template {
				s.Template = &Template{Flavor: Elasticsearch, Pattern: p, Priority: 100}
			}
			err := s.Ready(context.Background())
			defer s.Close()
			if tt.wantErrMatch != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrMatch) {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (len(f.policies) > 0) != tt.wantPolicy || (s.pruner != nil) != tt.wantPruner {
				t.Fatalf("policies %v, pruner %v", f.policies, s.pruner != nil)
			}
			if tt.wantInTmpl != "" && !strings.Contains(string(f.template), tt.wantInTmpl) {
				t.Fatalf("template %s lacks %s", f.template, tt.wantInTmpl)
			}
		})
	}
}

func TestConnAuthorize(t *testing.T) {
	for _, tt := range []struct {
		c    Conn
		want string
	}{
		{Conn{}, ""},
		{Conn{Username: "u", Password: "p"}, "Basic dTpw"},
		{Conn{APIKey: "a2V5"}, "ApiKey a2V5"},
	} {
		r, _ := http.NewRequest(http.MethodGet, "http://x", nil)
		tt.c.Authorize(r)
		if got := r.Header.Get("Authorization"); got != tt.want {
			t.Errorf("%+v: Authorization %q, want %q", tt.c, got, tt.want)
		}
	}
	if _, err := (Conn{CAFile: "/nonexistent.pem"}).Client(); err == nil || !strings.Contains(err.Error(), "ca_file") {
		t.Errorf("missing CA: %v", err)
	}
}
