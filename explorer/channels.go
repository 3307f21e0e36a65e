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

// domainQuery matches the referring domains channel's match finds in
// list: an entry ending in "." is a name in any top-level domain (a
// prefix, or after a dot), any other entry the domain or a subdomain.
func domainQuery(list []string) obj {
	var should []obj
	for _, d := range list {
		if strings.HasSuffix(d, ".") {
			should = append(should, obj{"prefix": obj{"referring_domain": d}}, obj{"wildcard": obj{"referring_domain": "*." + d + "*"}})
		} else {
			should = append(should, term("referring_domain", d), obj{"wildcard": obj{"referring_domain": "*." + d}})
		}
	}
	if len(should) == 0 {
		return matchNone()
	}
	return obj{"bool": obj{"should": should, "minimum_should_match": 1}}
}

// channelFilters is a filters aggregation's filters that count the events
// of every channel but direct exactly as channel classifies their domain,
// whatever the number of referring domains: each channel is its own
// domains, minus those of the channels channel checks before it. Its
// wildcard queries cost about 100 ms a search at 300,000 events, so
// /api/sources asks it only when its site list left sites out.
func (s *Server) channelFilters() obj {
	order := []struct {
		name string
		list []string
	}{{ChannelApp, s.cfg.AppDomains}, {ChannelEmail, emailDomains}, {ChannelSearch, searchDomains}, {ChannelSocial, socialDomains}}
	out := obj{}
	var before []obj
	for _, c := range order {
		q := domainQuery(c.list)
		out[c.name] = obj{"bool": obj{"filter": []obj{q}, "must_not": append([]obj{}, before...)}}
		before = append(before, q)
	}
	out[ChannelWebsites] = obj{"bool": obj{"filter": []obj{{"exists": obj{"field": "referring_domain"}}}, "must_not": before}}
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
