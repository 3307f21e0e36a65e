package transform_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/processors/transform"
)

// TestUserAgentCorpus checks the useragent processor against a corpus of
// real user agents — browsers old and new, in-app browsers, media players,
// crawlers, HTTP libraries and server-side scripts — each with the result
// it must give (testdata/useragents.tsv, sources in testdata/README.md).
func TestUserAgentCorpus(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "useragents.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u, err := transform.NewUserAgent(transform.UserAgentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dash := func(s string) string {
		if s == "-" {
			return ""
		}
		return s
	}
	var n, wrong int
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		cols := strings.SplitN(text, "\t", 5)
		if len(cols) != 5 {
			t.Fatalf("useragents.tsv:%d: want 5 tab-separated columns, have %d", line, len(cols))
		}
		want := event.UA{Device: cols[0], Browser: dash(cols[1]), BrowserVersion: dash(cols[2]), OS: dash(cols[3])}
		n++
		batch := messages([]byte("-"))
		batch[0].Parsed = true
		batch[0].Event.UserAgent = cols[4]
		if _, err := u.Process(t.Context(), batch); err != nil {
			t.Fatal(err)
		}
		got := batch[0].Event
		if got.UA != want || got.Bot != (want.Device == event.DeviceBot) {
			wrong++
			t.Errorf("useragents.tsv:%d: %s\n  got  %s\t%s\t%s\t%s (bot %v)\n  want %s\t%s\t%s\t%s", line, cols[4],
				got.UA.Device, got.UA.Browser, got.UA.BrowserVersion, got.UA.OS, got.Bot, want.Device, want.Browser, want.BrowserVersion, want.OS)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 80 {
		t.Fatalf("only %d agents in the corpus", n)
	}
	if wrong > 0 {
		t.Logf("%d of %d agents wrong", wrong, n)
	}
}
