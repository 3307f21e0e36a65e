package explorer

import "strings"

// The channels a visit comes through, in the order the page lists them.
const (
	ChannelDirect   = "direct"   // no referrer: typed, bookmarked, an app or an email client
	ChannelSearch   = "search"   // a search engine
	ChannelSocial   = "social"   // a social network or community
	ChannelApp      = "app"      // the platform's own web app (Config.AppDomains)
	ChannelEmail    = "email"    // a web mail client
	ChannelWebsites = "websites" // any other site: where assets are embedded or linked
)

var (
	searchDomains = []string{"google.", "bing.com", "duckduckgo.com", "yahoo.", "baidu.com", "yandex.", "ecosia.org", "search.brave.com", "startpage.com", "qwant.com"}
	socialDomains = []string{"facebook.com", "fb.com", "instagram.com", "linkedin.com", "lnkd.in", "t.co", "twitter.com", "x.com", "pinterest.", "reddit.com",
		"tiktok.com", "youtube.com", "news.ycombinator.com", "threads.net", "bsky.app", "mastodon.social", "snapchat.com", "vk.com", "weibo.com", "xing.com"}
	emailDomains = []string{"mail.google.com", "outlook.live.com", "outlook.office.com", "mail.yahoo.com", "mail.proton.me"}
)

// notWebsites lists exact domains that are never ChannelWebsites, for
// queries that only want websites to skip the bulk of the traffic early
// (the Go side still classifies every domain it gets).
func (s *Server) notWebsites() []string {
	out := append([]string{}, s.cfg.AppDomains...)
	for _, list := range [][]string{searchDomains, socialDomains, emailDomains} {
		for _, d := range list {
			if strings.HasSuffix(d, ".") {
				out = append(out, d+"com", d+"co.uk", d+"de", d+"fr", d+"ru")
			} else {
				out = append(out, d)
			}
		}
	}
	return out
}

// channel classifies a referring domain ("" is direct).
func (s *Server) channel(domain string) string {
	if domain == "" {
		return ChannelDirect
	}
	match := func(list []string) bool {
		for _, d := range list {
			if strings.HasSuffix(d, ".") {
				if strings.HasPrefix(domain, d) || strings.Contains(domain, "."+d) {
					return true
				}
			} else if domain == d || strings.HasSuffix(domain, "."+d) {
				return true
			}
		}
		return false
	}
	switch {
	case match(s.cfg.AppDomains):
		return ChannelApp
	case match(emailDomains):
		return ChannelEmail
	case match(searchDomains):
		return ChannelSearch
	case match(socialDomains):
		return ChannelSocial
	}
	return ChannelWebsites
}
