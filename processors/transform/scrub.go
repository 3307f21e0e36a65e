package transform

import (
	"bytes"
	"net/netip"
	"strings"
)

// ScrubText returns text with every IP address in it truncated as the
// event's addresses are. It is for raw records and error messages, whose
// format is not known, so it looks for addresses wherever they can be
// told from ordinary data:
//
//   - IPv4 in four decimal parts (leading zeros too) and IPv6 literals,
//     between any characters that cannot be part of one (a URL escape
//     such as %2C or %20 counts as such a separator), with a port kept;
//   - IPv4 glued to other characters that could belong to an address:
//     hex letters or a colon before it ("cafe1.2.3.4", "ip:1.2.3.4",
//     "deadbeef:1.2.3.4") or hex letters after it;
//   - IPv6 with percent-encoded colons ("2001%3Adb8%3A%3A1"), as in a
//     URL's query;
//   - IPv4 written as a URL's host in the other forms browsers accept —
//     an integer ("http://2130706433/"), hex ("http://0x7f000001/",
//     "http://0x7f.0.0.1/"), octal ("http://0177.0.0.1/") or fewer parts
//     ("http://127.1/") — for the schemes whose hosts browsers read that
//     way (http, https, ws, wss, ftp), also with "://" percent-encoded.
//
// Left alone, because they cannot be told from ordinary data without
// mangling it: a bare integer or hex number outside a URL's host (byte
// counts, ids and error codes look the same), dotted sequences of more
// than four numbers (version strings, OIDs: "1.3.6.1.4.1"), IPv4 with a
// percent-encoded dot, and an IPv6 address glued to hex letters on its
// left (the letters may be its first group). Text without an address
// comes back as it is (the same slice).
func (a *AnonymizeIP) ScrubText(text []byte) []byte {
	text = a.scrubURLHosts(text)
	var out []byte // nil until the first change
	last := 0
	for i := 0; i < len(text); {
		if !addrByte(text[i]) && !encodedColon(text, i) {
			i += escapeLen(text, i)
			continue
		}
		j, encoded := i, false
		for j < len(text) {
			switch {
			case addrByte(text[j]):
				j++
				continue
			case encodedColon(text, j):
				j += 3
				encoded = true
				continue
			}
			break
		}
		run := string(text[i:j])
		if encoded {
			run = decodeColons(run)
		}
		if masked, ok := a.scrubRun(run); ok {
			if encoded {
				masked = strings.ReplaceAll(masked, ":", "%3A")
			}
			out = append(out, text[last:i]...)
			out = append(out, masked...)
			last = j
		}
		i = j
	}
	if out == nil {
		return text
	}
	return append(out, text[last:]...)
}

// scrubRun returns run, a run of address bytes, with its addresses
// truncated, and whether anything changed: an address at its start (after
// a lone ':'), then every IPv4 address inside it.
func (a *AnonymizeIP) scrubRun(run string) (string, bool) {
	lead := ""
	if strings.HasPrefix(run, ":") && !strings.HasPrefix(run, "::") {
		lead, run = ":", run[1:]
	}
	if masked, n, ok := a.scrubStart(run); ok {
		return lead + masked + a.scrubIPv4s(run[n:]), true
	}
	out := a.scrubIPv4s(run)
	return lead + out, out != run
}

// scrubStart truncates the address at the start of a run of address
// bytes: it returns the replacement and how many bytes of run it
// replaces.
func (a *AnonymizeIP) scrubStart(run string) (string, int, bool) {
	if !strings.ContainsAny(run, ".:") {
		return "", 0, false
	}
	for cand := run; cand != ""; cand = strings.TrimRight(cand, ".:") {
		if addr, ok := parseAddr(cand); ok {
			return a.mask(addr).String(), len(cand), true
		}
		if i := strings.LastIndexByte(cand, ':'); i > 0 && isPort(cand[i+1:]) {
			if addr, ok := parseIPv4(cand[:i]); ok {
				return a.mask(addr).String() + cand[i:], len(cand), true
			}
		}
		if t := strings.TrimRight(cand, ".:"); t == cand {
			break
		}
	}
	return "", 0, false
}

// scrubIPv4s truncates every IPv4 address of four decimal parts inside s
// that is not part of a longer number or dotted sequence: the byte before
// it is not a digit or '.', and the byte after it not a digit, nor a '.'
// followed by a digit. Hex letters and colons around it are allowed.
func (a *AnonymizeIP) scrubIPv4s(s string) string {
	if strings.Count(s, ".") < 3 {
		return s
	}
	var out strings.Builder
	last := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) || i > 0 && (isDigit(s[i-1]) || s[i-1] == '.') {
			continue
		}
		end := quadEnd(s, i)
		if end < 0 {
			continue
		}
		addr, ok := parseIPv4(s[i:end])
		if !ok {
			continue
		}
		out.WriteString(s[last:i])
		out.WriteString(a.mask(addr).String())
		last, i = end, end-1
	}
	if last == 0 {
		return s
	}
	out.WriteString(s[last:])
	return out.String()
}

// quadEnd returns the end of four dot-separated parts of one to three
// decimal digits starting at s[i], bounded on the right as scrubIPv4s
// wants, or -1.
func quadEnd(s string, i int) int {
	j := i
	for part := range 4 {
		k := j
		for k < len(s) && isDigit(s[k]) && k-j < 3 {
			k++
		}
		if k == j || k < len(s) && isDigit(s[k]) {
			return -1
		}
		j = k
		if part < 3 {
			if j >= len(s) || s[j] != '.' {
				return -1
			}
			j++
		}
	}
	if j+1 < len(s) && s[j] == '.' && isDigit(s[j+1]) {
		return -1
	}
	return j
}

// URL prefixes (lower case) whose host scrubURLHosts reads: the schemes
// whose hosts browsers parse as IPv4 in every form, with "://" plain or
// percent-encoded.
var urlSchemes = []string{"http", "https", "ws", "wss", "ftp"}

// scrubURLHosts rewrites, as a truncated dotted quad, every URL host
// (after scheme:// or scheme%3A%2F%2F, a user@ skipped, up to a port,
// '/', '?', '#' or any other byte that ends a host) that a browser reads
// as IPv4 but that is not four decimal parts (those are left to the
// general scan, which reads leading zeros as decimal).
func (a *AnonymizeIP) scrubURLHosts(text []byte) []byte {
	if bytes.IndexByte(text, ':') < 0 && !bytes.Contains(text, []byte("%3")) {
		return text
	}
	lower := bytes.ToLower(text)
	var out []byte
	last := 0
	for i := 0; i < len(lower); i++ {
		var sep int
		switch {
		case bytes.HasPrefix(lower[i:], []byte("://")):
			sep = 3
		case bytes.HasPrefix(lower[i:], []byte("%3a%2f%2f")):
			sep = 9
		default:
			continue
		}
		if !hasScheme(lower[:i]) {
			continue
		}
		start := i + sep
		end := start
		for end < len(text) && hostByte(text[end]) {
			end++
		}
		host := string(text[start:end])
		if at := strings.LastIndexByte(host, '@'); at >= 0 {
			start += at + 1
			host = host[at+1:]
		}
		if c := strings.IndexByte(host, ':'); c >= 0 {
			host = host[:c]
		}
		addr, ok := whatwgIPv4(host)
		if !ok {
			continue
		}
		if _, plain := parseIPv4(host); plain {
			continue
		}
		out = append(out, text[last:start]...)
		out = append(out, a.mask(addr).String()...)
		last = start + len(host)
		i = last - 1
	}
	if out == nil {
		return text
	}
	return append(out, text[last:]...)
}

// hasScheme reports whether before ends in one of urlSchemes, not
// preceded by a letter, digit, '+', '-' or '.' (which would make it
// another scheme).
func hasScheme(before []byte) bool {
	for _, s := range urlSchemes {
		if !bytes.HasSuffix(before, []byte(s)) {
			continue
		}
		k := len(before) - len(s)
		if k == 0 {
			return true
		}
		c := before[k-1]
		if !(c >= 'a' && c <= 'z' || isDigit(c) || c == '+' || c == '-' || c == '.') {
			return true
		}
	}
	return false
}

// hostByte reports a byte of a URL's authority as scrubURLHosts reads it.
func hostByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || isDigit(c) || c == '.' || c == '-' || c == '_' || c == ':' || c == '@'
}

// whatwgIPv4 parses host as the WHATWG URL standard's IPv4 parser does:
// one to four dot-separated numbers (a trailing dot allowed), each
// decimal, hex after 0x, or octal after a leading 0; every part but the
// last at most 255, the last filling the remaining bytes.
func whatwgIPv4(host string) (netip.Addr, bool) {
	parts := strings.Split(host, ".")
	if len(parts) > 1 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	if len(parts) == 0 || len(parts) > 4 {
		return netip.Addr{}, false
	}
	var v uint64
	for i, p := range parts {
		n, ok := whatwgNumber(p)
		if !ok {
			return netip.Addr{}, false
		}
		if i < len(parts)-1 {
			if n > 255 {
				return netip.Addr{}, false
			}
			v |= n << (8 * (3 - i))
			continue
		}
		if n >= 1<<(8*(5-len(parts))) {
			return netip.Addr{}, false
		}
		v |= n
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// whatwgNumber parses one part of an IPv4 host: decimal, 0x hex (0x
// alone is 0) or 0-prefixed octal, below 2^32.
func whatwgNumber(p string) (uint64, bool) {
	base := uint64(10)
	switch {
	case len(p) >= 2 && (p[:2] == "0x" || p[:2] == "0X"):
		p, base = p[2:], 16
		if p == "" {
			return 0, true
		}
	case len(p) >= 2 && p[0] == '0':
		p, base = p[1:], 8
	case p == "":
		return 0, false
	}
	var n uint64
	for i := 0; i < len(p); i++ {
		var d uint64
		c := p[i]
		switch {
		case isDigit(c):
			d = uint64(c - '0')
		case c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		case c >= 'A' && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return 0, false
		}
		if d >= base {
			return 0, false
		}
		n = n*base + d
		if n >= 1<<32 {
			return 0, false
		}
	}
	return n, true
}

// encodedColon reports a percent-encoded colon (%3A, %3a) at text[i].
func encodedColon(text []byte, i int) bool {
	return i+2 < len(text) && text[i] == '%' && text[i+1] == '3' && (text[i+2] == 'A' || text[i+2] == 'a')
}

// decodeColons replaces every %3A and %3a in s with ':'.
func decodeColons(s string) string {
	return strings.NewReplacer("%3A", ":", "%3a", ":").Replace(s)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
