package transform

import "strings"

// botPattern is a case-insensitive substring of a robot's User-Agent and the
// name to report as its browser ("" to keep what the parser found).
type botPattern struct {
	token string // lower case
	name  string
}

// namedBots are robots worth telling apart in a report: search engines,
// SEO and AI crawlers, link previewers, monitoring and HTTP libraries. The
// first match wins, so more specific tokens come before tokens they contain.
var namedBots = []botPattern{
	// Search engines.
	{"googlebot", "Googlebot"}, {"adsbot-google", "AdsBot-Google"}, {"mediapartners-google", "Mediapartners-Google"},
	{"google-inspectiontool", "Google-InspectionTool"}, {"googleother", "GoogleOther"}, {"feedfetcher-google", "Feedfetcher-Google"},
	{"apis-google", "APIs-Google"}, {"google-read-aloud", "Google-Read-Aloud"}, {"storebot-google", "Storebot-Google"},
	{"bingbot", "bingbot"}, {"bingpreview", "BingPreview"}, {"msnbot", "msnbot"}, {"adidxbot", "adidxbot"},
	{"yahoo! slurp", "Yahoo! Slurp"}, {"duckduckbot", "DuckDuckBot"}, {"duckassistbot", "DuckAssistBot"},
	{"baiduspider", "Baiduspider"}, {"yandexbot", "YandexBot"}, {"yandeximages", "YandexImages"}, {"yandex.com/bots", "YandexBot"},
	{"sogou web spider", "Sogou"}, {"exabot", "Exabot"}, {"seznambot", "SeznamBot"}, {"applebot", "Applebot"}, {"petalbot", "PetalBot"},
	{"qwantify", "Qwantify"}, {"qwantbot", "Qwantbot"}, {"naverbot", "NaverBot"}, {"yeti/", "Yeti"}, {"coccocbot", "coccocbot"},
	// SEO crawlers.
	{"ahrefsbot", "AhrefsBot"}, {"ahrefssiteaudit", "AhrefsSiteAudit"}, {"semrushbot", "SemrushBot"}, {"mj12bot", "MJ12bot"},
	{"dotbot", "DotBot"}, {"rogerbot", "rogerbot"}, {"screaming frog", "Screaming Frog SEO Spider"}, {"blexbot", "BLEXBot"},
	{"serpstatbot", "serpstatbot"}, {"dataforseobot", "DataForSeoBot"}, {"barkrowler", "Barkrowler"}, {"seekportbot", "SeekportBot"},
	// AI and data crawlers.
	{"gptbot", "GPTBot"}, {"chatgpt-user", "ChatGPT-User"}, {"oai-searchbot", "OAI-SearchBot"}, {"claudebot", "ClaudeBot"},
	{"claude-web", "Claude-Web"}, {"claude-user", "Claude-User"}, {"anthropic-ai", "anthropic-ai"}, {"ccbot", "CCBot"},
	{"bytespider", "Bytespider"}, {"amazonbot", "Amazonbot"}, {"perplexitybot", "PerplexityBot"}, {"perplexity-user", "Perplexity-User"},
	{"cohere-ai", "cohere-ai"}, {"diffbot", "Diffbot"}, {"meta-externalagent", "meta-externalagent"}, {"meta-externalfetcher", "meta-externalfetcher"},
	{"imagesiftbot", "ImagesiftBot"}, {"timpibot", "Timpibot"}, {"omgili", "omgili"}, {"youbot", "YouBot"}, {"ai2bot", "AI2Bot"},
	// Link previews and social networks.
	{"facebookexternalhit", "facebookexternalhit"}, {"facebookcatalog", "facebookcatalog"}, {"facebot", "Facebot"},
	{"twitterbot", "Twitterbot"}, {"linkedinbot", "LinkedInBot"}, {"slackbot", "Slackbot"}, {"slack-imgproxy", "Slack-ImgProxy"},
	{"discordbot", "Discordbot"}, {"telegrambot", "TelegramBot"}, {"whatsapp", "WhatsApp"}, {"skypeuripreview", "SkypeUriPreview"},
	{"pinterestbot", "Pinterestbot"}, {"pinterest/", "Pinterest"}, {"redditbot", "redditbot"}, {"embedly", "Embedly"},
	{"iframely", "Iframely"}, {"vkshare", "vkShare"}, {"bitlybot", "bitlybot"}, {"mastodon", "Mastodon"},
	{"teamsbot", "Teams"}, {"snap url preview", "Snap URL Preview"},
	// Monitoring, health checks and performance tools.
	{"pingdom", "Pingdom"}, {"uptimerobot", "UptimeRobot"}, {"statuscake", "StatusCake"}, {"site24x7", "Site24x7"},
	{"newrelicpinger", "NewRelicPinger"}, {"datadog", "Datadog"}, {"check_http", "check_http"}, {"nagios", "Nagios"},
	{"zabbix", "Zabbix"}, {"prometheus", "Prometheus"}, {"blackbox-exporter", "blackbox_exporter"}, {"kube-probe", "kube-probe"},
	{"elb-healthchecker", "ELB-HealthChecker"}, {"amazon-route53-health-check", "Route53-Health-Check"},
	{"googlestackdrivermonitoring", "GoogleStackdriverMonitoring"}, {"uptime-kuma", "Uptime-Kuma"}, {"betteruptime", "Better Uptime"},
	{"gtmetrix", "GTmetrix"}, {"lighthouse", "Lighthouse"}, {"pagespeed", "PageSpeed"},
	{"catchpoint", "Catchpoint"}, {"dynatrace", "Dynatrace"}, {"checkly", "Checkly"}, {"freshping", "Freshping"},
	// Headless browsers and automation.
	{"headlesschrome", "HeadlessChrome"}, {"phantomjs", "PhantomJS"}, {"puppeteer", "Puppeteer"}, {"playwright", "Playwright"},
	{"selenium", "Selenium"}, {"cypress", "Cypress"},
	// HTTP clients and libraries.
	{"curl/", "curl"}, {"wget/", "Wget"}, {"python-requests", "python-requests"}, {"python-urllib", "Python-urllib"},
	{"python-httpx", "python-httpx"}, {"aiohttp", "aiohttp"}, {"go-http-client", "Go-http-client"},
	{"apache-httpclient", "Apache-HttpClient"}, {"commons-httpclient", "Jakarta Commons-HttpClient"}, {"java/", "Java"},
	{"libwww-perl", "libwww-perl"}, {"lwp::simple", "LWP::Simple"}, {"httpie", "HTTPie"}, {"postmanruntime", "PostmanRuntime"},
	{"insomnia", "Insomnia"}, {"axios/", "axios"}, {"node-fetch", "node-fetch"}, {"undici", "undici"}, {"got (https://", "got"},
	{"ruby", "Ruby"}, {"faraday", "Faraday"}, {"guzzlehttp", "GuzzleHttp"}, {"php/", "PHP"}, {"winhttp", "WinHTTP"},
	{"powershell", "PowerShell"}, {"scrapy", "Scrapy"}, {"httrack", "HTTrack"}, {"aws-sdk", "AWS SDK"}, {"boto3", "Boto3"},
	{"reqwest", "reqwest"}, {"bun/", "Bun"}, {"deno/", "Deno"},
	// Server-side scripts, integrations and system agents: automated
	// requests made by another business system, not by a person.
	{"netsuite", "NetSuite"}, {"suitescript", "NetSuite"}, {"sfdc-callout", "Salesforce"},
	{"zapier", "Zapier"}, {"azure-logic-apps", "Azure Logic Apps"}, {"integromat", "Make"},
	{"microsoft-cryptoapi", "Microsoft-CryptoAPI"},
}

// exactBots are agents that are robots only as the whole string: "node"
// is what Node.js's built-in fetch sends, and too short a token to look
// for inside other agents.
var exactBots = map[string]string{"node": "Node.js", "undici": "undici"}

// genericBots are substrings that mark a robot whose name we do not know.
// "+http" is the "+http://example.com/bot.html" contact link most robots
// carry.
var genericBots = []string{"bot", "crawl", "spider", "scrape", "slurp", "fetcher", "+http", "monitor", "headless", "archiver"}

// notBots are substrings that contain a generic token but are browsers or
// devices: the Cubot phone brand ("CUBOT_X19").
var notBots = []string{"cubot"}

// botMatcher finds the robot tokens in a User-Agent in one pass, whatever
// the number of tokens: an Aho-Corasick automaton over ASCII
// case-insensitive bytes, built once per UserAgent processor. Checking 150
// tokens one by one with strings.Index costs about 10 µs per new agent;
// this costs well under 1 µs. It is immutable and safe for concurrent use.
type botMatcher struct {
	patterns []botPattern // named, then extra (no name), then generic
	class    [256]uint8   // byte → input class; 0 is "no token has it"
	nclass   int
	next     []int32 // next[state*nclass+class]: the DFA's transitions
	best     []int32 // best[state]: lowest pattern index ending here, -1 if none
}

// newBotMatcher builds the automaton for the built-in lists plus extra
// (lower-case) tokens.
func newBotMatcher(extra []string) *botMatcher {
	m := &botMatcher{patterns: append([]botPattern(nil), namedBots...)}
	for _, t := range extra {
		m.patterns = append(m.patterns, botPattern{token: t})
	}
	for _, t := range genericBots {
		m.patterns = append(m.patterns, botPattern{token: t})
	}
	tokens := make([]string, 0, len(m.patterns)+len(notBots))
	for _, p := range m.patterns {
		tokens = append(tokens, p.token)
	}
	masks := len(tokens)
	tokens = append(tokens, notBots...)

	m.nclass = 1
	for _, t := range tokens {
		for i := 0; i < len(t); i++ {
			if c := t[i]; m.class[c] == 0 {
				m.class[c] = uint8(m.nclass)
				if 'a' <= c && c <= 'z' {
					m.class[c-'a'+'A'] = uint8(m.nclass)
				}
				m.nclass++
			}
		}
	}

	// The trie: goto edges, and the patterns ending at each state.
	type state struct {
		edges map[uint8]int32
		ends  []int // pattern indexes (>= masks: a mask)
	}
	states := []state{{edges: map[uint8]int32{}}}
	for pi, t := range tokens {
		s := int32(0)
		for i := 0; i < len(t); i++ {
			c := m.class[t[i]]
			n, ok := states[s].edges[c]
			if !ok {
				n = int32(len(states))
				states = append(states, state{edges: map[uint8]int32{}})
				states[s].edges[c] = n
			}
			s = n
		}
		states[s].ends = append(states[s].ends, pi)
	}

	// Breadth-first: failure links turn the trie into a DFA, and each
	// state's outputs gain those of its failure state (the patterns that
	// are suffixes of what was read).
	m.next = make([]int32, len(states)*m.nclass)
	fail := make([]int32, len(states))
	outs := make([][]int, len(states))
	outs[0] = states[0].ends
	queue := []int32{0}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for c := 0; c < m.nclass; c++ {
			n, ok := states[s].edges[uint8(c)]
			if !ok {
				if s != 0 {
					m.next[int(s)*m.nclass+c] = m.next[int(fail[s])*m.nclass+c]
				}
				continue
			}
			m.next[int(s)*m.nclass+c] = n
			if s != 0 {
				fail[n] = m.next[int(fail[s])*m.nclass+c]
			}
			outs[n] = append(append([]int(nil), states[n].ends...), outs[fail[n]]...)
			queue = append(queue, n)
		}
	}

	// A pattern that is a suffix of a mask ending at the same place (the
	// "bot" of "cubot") does not count.
	m.best = make([]int32, len(states))
	for s, out := range outs {
		m.best[s] = -1
		for _, pi := range out {
			if pi >= masks {
				continue
			}
			masked := false
			for _, mi := range out {
				if mi >= masks && len(tokens[mi]) >= len(tokens[pi]) {
					masked = true
				}
			}
			if !masked && (m.best[s] < 0 || int32(pi) < m.best[s]) {
				m.best[s] = int32(pi)
			}
		}
	}
	return m
}

// match reports whether ua (any case) is a robot, with the browser name to
// report for it ("" to keep the parser's) and the version that follows the
// name's "/" in ua. Named robots win over generic tokens, in list order.
func (m *botMatcher) match(ua string) (name, version string, ok bool) {
	best, bestEnd := int32(-1), 0
	s := int32(0)
	for i := 0; i < len(ua); i++ {
		s = m.next[int(s)*m.nclass+int(m.class[ua[i]])]
		if b := m.best[s]; b >= 0 && (best < 0 || b < best) {
			best, bestEnd = b, i+1
		}
	}
	if best < 0 {
		return "", "", false
	}
	p := m.patterns[best]
	if p.name == "" {
		return "", "", true
	}
	return p.name, versionAt(ua, bestEnd-len(p.token)), true
}

// asciiLower lower-cases the ASCII letters of s.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// versionAt returns the version of the product token that starts at
// ua[i:]: the digits and dots after the token's '/' (as in "Googlebot/2.1"
// or "curl/7.55.1"), or "" if the token has none.
func versionAt(ua string, i int) string {
	for i < len(ua) && ua[i] != '/' && ua[i] != ' ' && ua[i] != ';' && ua[i] != ')' && ua[i] != '(' {
		i++
	}
	if i >= len(ua) || ua[i] != '/' {
		return ""
	}
	i++
	j := i
	for j < len(ua) && (ua[j] >= '0' && ua[j] <= '9' || ua[j] == '.') {
		j++
	}
	return strings.TrimRight(ua[i:j], ".")
}
