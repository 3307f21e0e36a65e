package explorer_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/leasehold/leasehold/explorer"
)

// unitServer is a server whose OpenSearch is unreachable: enough for
// everything decided before a query is sent.
func unitServer(t *testing.T) *httptest.Server {
	t.Helper()
	users, err := explorer.NewUsers([]explorer.User{
		{Name: "admin", TokenSHA256: explorer.HashToken("admin-secret"), Admin: true},
		{Name: "acme", TokenSHA256: explorer.HashToken("acme-secret"), Tenant: "acme"},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := explorer.New(explorer.Config{OpenSearch: "http://127.0.0.1:1", Index: "x-*", Now: func() time.Time { return now }}, users, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestSecurityHeaders(t *testing.T) {
	ts := unitServer(t)
	for _, path := range []string{"/", "/app.js", "/api/summary", "/nope"} {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
		resp, _ := do(t, req)
		h := resp.Header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "connect-src 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP allows inline code: %q", path, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: headers %v", path, h)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/me", nil)
	if resp, _ := do(t, req); resp.Header.Get("Cache-Control") != "no-store" || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unauthenticated API: %d %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
}

func TestPageHasNoInlineCode(t *testing.T) {
	b, err := os.ReadFile("web/index.html")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if strings.Contains(s, "<script>") || strings.Contains(s, "style=") || strings.Contains(s, "<style") || strings.Contains(s, " on") && strings.Contains(s, "onclick") {
		t.Fatal("index.html holds inline script or style, which the CSP forbids")
	}
	js, _ := os.ReadFile("web/app.js")
	if strings.Contains(string(js), "innerHTML") || strings.Contains(string(js), "eval(") {
		t.Fatal("app.js must build the DOM with textContent only")
	}
}

func TestLoginAndSession(t *testing.T) {
	ts := unitServer(t)
	login := func(token string, hdr map[string]string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/login", strings.NewReader(`{"token":"`+token+`"}`))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, _ := do(t, req)
		return resp
	}
	if resp := login("wrong", nil); resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Fatalf("bad token: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	resp := login("acme-secret", map[string]string{"Origin": ts.URL, "Sec-Fetch-Site": "same-origin"})
	if resp.StatusCode != http.StatusOK || len(resp.Cookies()) != 1 {
		t.Fatalf("good token: %d", resp.StatusCode)
	}
	c := resp.Cookies()[0]
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
		t.Fatalf("cookie %+v", c)
	}
	me := func(cookie *http.Cookie) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/me", nil)
		req.AddCookie(cookie)
		resp, body := do(t, req)
		return resp.StatusCode, body
	}
	if code, body := me(c); code != 200 || !strings.Contains(body, `"tenant":"acme"`) || strings.Contains(body, `"admin":true`) {
		t.Fatalf("me: %d %s", code, body)
	}
	forged := *c
	forged.Value = strings.Replace(c.Value, c.Value[:4], "YWRt", 1) // "adm..." in the name part
	if code, _ := me(&forged); code != http.StatusUnauthorized {
		t.Fatalf("a forged cookie was accepted: %d", code)
	}
	// Cross-site requests never sign anyone in, nor reach the API.
	for _, hdr := range []map[string]string{{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}} {
		if resp := login("acme-secret", hdr); resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
			t.Fatalf("cross-site login %v: %d", hdr, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/login", strings.NewReader("token=acme-secret"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, _ := do(t, req); resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("form post: %d", resp.StatusCode)
	}
	req, _ = http.NewRequest(http.MethodGet, ts.URL+"/api/me", nil)
	req.AddCookie(c)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, _ := do(t, req); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site API read: %d", resp.StatusCode)
	}
	req, _ = http.NewRequest(http.MethodGet, ts.URL+"/api/login", nil)
	if resp, _ := do(t, req); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET login: %d", resp.StatusCode)
	}
}

func TestCustomerCannotNameAnotherTenant(t *testing.T) {
	ts := unitServer(t)
	for _, path := range []string{"/api/summary", "/api/assets", "/api/sources", "/api/places", "/api/tech", "/api/highlights", "/api/asset"} {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+path+"?tenant=globex&asset=x", nil)
		req.Header.Set("Authorization", "Bearer acme-secret")
		if resp, body := do(t, req); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "forbidden_tenant") {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
	// An unreachable OpenSearch is a 502 that says what is wrong, not a hang or a 500.
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/summary", nil)
	req.Header.Set("Authorization", "Bearer acme-secret")
	if resp, body := do(t, req); resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "search_unavailable") {
		t.Fatalf("unreachable store: %d %s", resp.StatusCode, body)
	}
}

func TestParseQuery(t *testing.T) {
	tests := []struct {
		query, from, to, prevFrom, prevTo, err string
	}{
		{"", "2026-11-23", "2026-11-30", "2026-11-16", "2026-11-23", ""},
		{"period=30d&compare=year", "2026-10-31", "2026-11-30", "2025-10-31", "2025-11-30", ""},
		{"period=month&month=2026-02", "2026-02-01", "2026-03-01", "2026-01-01", "2026-02-01", ""},
		{"period=custom&from=2026-11-01&to=2026-11-01&compare=none", "2026-11-01", "2026-11-02", "", "", ""},
		{"period=custom&from=2026-11-02&to=2026-11-01", "", "", "", "", "to: is before from"},
		{"period=month", "", "", "", "", "month: want YYYY-MM"},
		{"type=video&type=image", "", "", "", "", "given 2 times"},
		{"q=*", "", "", "", "", "q: unknown parameter"},
		{"limit=0", "", "", "", "", "limit"},
		{"asset=" + url.QueryEscape("a b"), "", "", "", "", "asset: not an asset id"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			v, _ := url.ParseQuery(tc.query)
			q, err := explorer.ParseQuery(v, now)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			pf, pt, _ := q.Previous()
			got := []string{q.From.Format(time.DateOnly), q.To.Format(time.DateOnly), dateOrEmpty(pf), dateOrEmpty(pt)}
			want := []string{tc.from, tc.to, tc.prevFrom, tc.prevTo}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

func dateOrEmpty(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.DateOnly)
}

func TestUsersFile(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := dir + "/users.yaml"
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	h := explorer.HashToken("x")
	if _, err := explorer.LoadUsers(write("users:\n  - {name: a, token_sha256: " + h + ", tenant: acme}\n  - {name: b, token_sha256: " + h + ", admin: true}\n")); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct{ file, want string }{
		{"users:\n  - {name: a, token_sha256: " + h + "}\n", "tenant is empty"},
		{"users:\n  - {name: a, token_sha256: abc, tenant: x}\n", "64 hex digits"},
		{"users:\n  - {name: a, token_sha256: " + h + ", tenant: x}\n  - {name: a, token_sha256: " + h + ", tenant: y}\n", "appears twice"},
		{"users:\n  - {name: a, token: x, tenant: x}\n", "field token not found"},
		{"users: []\n", "nobody could sign in"},
	} {
		if _, err := explorer.LoadUsers(write(bad.file)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: error %v, want %q", bad.file, err, bad.want)
		}
	}
}

// TestMessageCatalog keeps the languages in step: every key of English is
// in every other language and no language has keys English lacks.
func TestMessageCatalog(t *testing.T) {
	b, err := os.ReadFile("web/messages.json")
	if err != nil {
		t.Fatal(err)
	}
	var cat map[string]map[string]string
	if err := json.Unmarshal(b, &cat); err != nil {
		t.Fatal(err)
	}
	if len(cat) < 2 {
		t.Fatalf("%d languages", len(cat))
	}
	for lang, msgs := range cat {
		var missing, extra []string
		for k := range cat["en"] {
			if _, ok := msgs[k]; !ok {
				missing = append(missing, k)
			}
		}
		for k := range msgs {
			if _, ok := cat["en"][k]; !ok {
				extra = append(extra, k)
			}
		}
		sort.Strings(missing)
		if len(missing)+len(extra) > 0 {
			t.Errorf("%s: missing %v, extra %v", lang, missing, extra)
		}
	}
	// Every key the page asks for literally exists.
	js, _ := os.ReadFile("web/app.js")
	for _, m := range regexpKeys.FindAllStringSubmatch(string(js), -1) {
		if _, ok := cat["en"][m[1]]; !ok {
			if _, plural := cat["en"][m[1]+"_other"]; !plural {
				t.Errorf("app.js uses message %q, which the catalog lacks", m[1])
			}
		}
	}
}
