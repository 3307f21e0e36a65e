package event

import "strings"

// ReferringDomain returns the host of a referrer URL, lower-cased, without
// port, user info, a trailing dot or a leading "www.". A referrer without a
// scheme ("example.com/page") is read as starting with its host. It returns ""
// for an empty referrer or one with no host. It does not allocate unless the
// host has upper-case letters, and is safe for concurrent use.
func ReferringDomain(referrer string) string {
	s := strings.TrimSpace(referrer)
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	} else {
		s = strings.TrimPrefix(s, "//")
	}
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	if strings.HasPrefix(s, "[") {
		// IPv6 literal: [::1]:8080
		if i := strings.IndexByte(s, ']'); i > 0 {
			return strings.ToLower(s[1:i])
		}
		return ""
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSuffix(s, ".")
	for i := 0; i < len(s); i++ {
		if b := s[i]; b <= ' ' || b == 0x7f || strings.IndexByte(`"%<>\^`+"`"+`{|}`, b) >= 0 {
			return "" // not a host name: a relative or garbled referrer
		}
	}
	s = strings.ToLower(s)
	return strings.TrimPrefix(s, "www.")
}
