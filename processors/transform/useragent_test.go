package transform_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/processors/transform"
)

func TestUserAgentWellKnown(t *testing.T) {
	tests := []struct {
		name, ua string
		want     event.UA
	}{
		{"chrome windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36",
			event.UA{Browser: "Chrome", BrowserVersion: "119.0.0.0", OS: "Windows", Device: "desktop"}},
		{"edge", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36 Edg/119.0.2151.72",
			event.UA{Browser: "Edge", BrowserVersion: "119.0.2151.72", OS: "Windows", Device: "desktop"}},
		{"firefox", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0",
			event.UA{Browser: "Firefox", BrowserVersion: "120.0", OS: "Windows", Device: "desktop"}},
		{"safari mac", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
			event.UA{Browser: "Safari", BrowserVersion: "17.1", OS: "MacOS", Device: "desktop"}},
		{"chromeos", "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36",
			event.UA{Browser: "Chrome", BrowserVersion: "119.0.0.0", OS: "ChromeOS", Device: "desktop"}},
		{"iphone safari", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
			event.UA{Browser: "Safari", BrowserVersion: "17.1", OS: "iOS", Device: "mobile"}},
		{"iphone chrome", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/119.0.6045.169 Mobile/15E148 Safari/604.1",
			event.UA{Browser: "Chrome", BrowserVersion: "119.0.6045.169", OS: "iOS", Device: "mobile"}},
		{"ipad", "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
			event.UA{Browser: "Safari", BrowserVersion: "16.6", OS: "iOS", Device: "tablet"}},
		{"android phone", "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.6045.163 Mobile Safari/537.36",
			event.UA{Browser: "Chrome", BrowserVersion: "119.0.6045.163", OS: "Android", Device: "mobile"}},
		{"android tablet has no Mobile token", "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36",
			event.UA{Browser: "Chrome", BrowserVersion: "119.0.0.0", OS: "Android", Device: "tablet"}},
		{"cubot phone is not a bot", "Mozilla/5.0 (Linux; Android 10; CUBOT_X19) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/110.0.0.0 Mobile Safari/537.36",
			event.UA{Browser: "Chrome", BrowserVersion: "110.0.0.0", OS: "Android", Device: "mobile"}},
		{"old ie", "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 5.1; 360SE)",
			event.UA{Browser: "IE", BrowserVersion: "7.0", OS: "Windows", Device: "desktop"}},
		{"smart tv", "Roku4640X/DVP-7.70 (297.70E04154A)", event.UA{Device: "other"}},
		{"googlebot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
			event.UA{Browser: "Googlebot", BrowserVersion: "2.1", Device: "bot"}},
		{"googlebot smartphone", "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.6045.199 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
			event.UA{Browser: "Googlebot", BrowserVersion: "2.1", OS: "Android", Device: "bot"}},
		{"bingbot", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
			event.UA{Browser: "bingbot", BrowserVersion: "2.0", Device: "bot"}},
		{"gptbot", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
			event.UA{Browser: "GPTBot", BrowserVersion: "1.2", Device: "bot"}},
		{"facebook preview", "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
			event.UA{Browser: "facebookexternalhit", BrowserVersion: "1.1", Device: "bot"}},
		{"uptimerobot", "Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
			event.UA{Browser: "UptimeRobot", BrowserVersion: "2.0", Device: "bot"}},
		{"route53 health check", "Amazon-Route53-Health-Check-Service (ref 1a2b3c; report http://amzn.to/1vsZADi)",
			event.UA{Browser: "Route53-Health-Check", Device: "bot"}},
		{"curl", "curl/8.4.0", event.UA{Browser: "curl", BrowserVersion: "8.4.0", Device: "bot"}},
		{"wget", "Wget/1.21.3", event.UA{Browser: "Wget", BrowserVersion: "1.21.3", Device: "bot"}},
		{"python requests", "python-requests/2.31.0", event.UA{Browser: "python-requests", BrowserVersion: "2.31.0", Device: "bot"}},
		{"go", "Go-http-client/1.1", event.UA{Browser: "Go-http-client", BrowserVersion: "1.1", Device: "bot"}},
		{"headless chrome", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/100.0.4896.88 Safari/537.36",
			event.UA{Browser: "HeadlessChrome", BrowserVersion: "100.0.4896.88", OS: "Linux", Device: "bot"}},
		{"unknown crawler by generic token", "Mozilla/5.0 (compatible; ExampleCrawler/0.1; +https://example.com/about)",
			event.UA{Device: "bot"}},
		{"unknown client", "x", event.UA{Device: "other"}},
	}
	u, err := transform.NewUserAgent(transform.UserAgentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, pass := range []string{"parsed", "cached"} {
				batch := messages([]byte("-"))
				batch[0].Parsed = true
				batch[0].Event.UserAgent = tc.ua
				if _, err := u.Process(context.Background(), batch); err != nil {
					t.Fatal(err)
				}
				ev := batch[0].Event
				if ev.UA != tc.want || ev.Bot != (tc.want.Device == event.DeviceBot) {
					t.Fatalf("%s: UA %+v bot %v, want %+v", pass, ev.UA, ev.Bot, tc.want)
				}
			}
		})
	}
}

// TestUserAgentFixture checks the agents of the CloudFront fixture: browsers
// on Windows, a headless Chrome and curl. (The agent with a stray
// "User-Agent:" prefix is on the truncated line, which does not parse; it
// is in TestUserAgentWellKnown.)
func TestUserAgentFixture(t *testing.T) {
	p, err := transform.NewParser(transform.ParserOptions{})
	if err != nil {
		t.Fatal(err)
	}
	u, err := transform.NewUserAgent(transform.UserAgentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	batch, _ := p.Process(context.Background(), messages(fixtureRecords(t)...))
	if _, err := u.Process(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, m := range batch {
		if m.Failed() != nil {
			continue
		}
		e := m.Event
		got[fmt.Sprintf("%s %s %s %s bot=%v", e.UA.Browser, e.UA.BrowserVersion, e.UA.OS, e.UA.Device, e.Bot)]++
	}
	want := map[string]int{
		"Chrome 78.0.3904.108 Windows desktop bot=false":  5,
		"Chrome 100.0.4896.127 Windows desktop bot=false": 2,
		"HeadlessChrome 100.0.4896.88 Linux bot bot=true": 3,
		"curl 7.55.1  bot bot=true":                       1,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("agents\n got %v\nwant %v", got, want)
	}
}

func TestUserAgentSkipsEmptyAndFailed(t *testing.T) {
	u, err := transform.NewUserAgent(transform.UserAgentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	batch := messages([]byte("a"), []byte("b"), []byte("c"))
	batch[0].Parsed = true // no user agent
	batch[1].Parsed = true
	batch[1].Event.UserAgent = "curl/1"
	batch[1].Fail("x", 1, errors.New("poison"))
	batch[2].Event.UserAgent = "curl/1" // not parsed
	out, err := u.Process(context.Background(), batch)
	if err != nil || len(out) != 3 {
		t.Fatalf("Process: %d messages, %v", len(out), err)
	}
	for i, m := range out {
		if m.Event.UA != (event.UA{}) || m.Event.Bot {
			t.Errorf("message %d enriched: %+v", i, m.Event.UA)
		}
	}
}

func TestUserAgentExtraBots(t *testing.T) {
	u, err := transform.NewUserAgent(transform.UserAgentOptions{Bots: []string{"AcmeMonitor"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Parse("acmemonitor/3 (internal)"); got.Device != event.DeviceBot {
		t.Fatalf("extra bot not matched: %+v", got)
	}
	if got := u.Parse("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0"); got.Device != event.DeviceDesktop {
		t.Fatalf("browser matched as bot: %+v", got)
	}
}

func TestUserAgentOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		opts transform.UserAgentOptions
		want string
	}{
		{"negative cache", transform.UserAgentOptions{CacheSize: -1}, "cache_size: -1 is negative"},
		{"empty bot", transform.UserAgentOptions{Bots: []string{"x", " "}}, "bots: entry 1 is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := transform.NewUserAgent(tc.opts)
			if !errors.Is(err, transform.ErrOption) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrOption containing %q", err, tc.want)
			}
		})
	}
}

// TestUserAgentConcurrentBoundedCache parses many distinct agents from
// several goroutines (as several shards do) with a small cache: results
// stay right and the race detector stays quiet.
func TestUserAgentConcurrentBoundedCache(t *testing.T) {
	u, err := transform.NewUserAgent(transform.UserAgentOptions{CacheSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				ua := fmt.Sprintf("curl/%d.%d", g, i%200)
				if got := u.Parse(ua); got.Browser != "curl" || got.BrowserVersion != fmt.Sprintf("%d.%d", g, i%200) {
					errs <- fmt.Errorf("%s parsed as %+v", ua, got)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
