package transform

import (
	"context"
	"errors"
	"net/netip"
	"strings"

	"github.com/leasehold/leasehold/processors"
)

// The defaults of AnonymizeIPOptions: keep an IPv4 /24 and an IPv6 /48,
// the truncation commonly accepted as no longer identifying one household
// while still locating its network.
const (
	DefaultIPv4Prefix = 24
	DefaultIPv6Prefix = 48
)

// Redacted replaces a forwarded-for entry that looks like an address but
// does not parse as one ("1.2.3", "0x7f.1"): it cannot be truncated, so it
// is not kept. It is a valid RFC 7239 obfuscated identifier.
const Redacted = "_redacted"

// AnonymizeIPOptions configures the anonymize_ip processor. A nil field
// takes its default.
type AnonymizeIPOptions struct {
	// IPv4Prefix is how many leading bits of an IPv4 address to keep
	// (0–32; default DefaultIPv4Prefix); the rest are zeroed.
	IPv4Prefix *int `yaml:"ipv4_prefix"`
	// IPv6Prefix is how many leading bits of an IPv6 address to keep
	// (0–128; default DefaultIPv6Prefix).
	IPv6Prefix *int `yaml:"ipv6_prefix"`
	// KeepRawIPInDeadLetters stores dead letters with the raw record, full
	// client addresses included, for debugging. Default false: a dead
	// letter holds the record and the event with every address truncated
	// as in the sinks' documents.
	KeepRawIPInDeadLetters bool `yaml:"keep_raw_ip_in_dead_letters"`
}

// AnonymizeIP is the anonymize_ip processor: it zeroes the low bits of
// Event.ClientIP and of every address in Event.ForwardedFor. It must run
// after geoip, which needs the whole address. It is immutable and safe for
// concurrent use.
//
// Forwarded-for entries are read in every form proxies write them: a bare
// address, "addr:port", "[v6]", "[v6]:port", an IPv4 address with leading
// zeros ("203.0.113.077", read as decimal), and RFC 7239 elements
// ("for=203.0.113.77", `for="[2001:db8::1]:4711";proto=https;by=…`, whose
// for= and by= values are truncated). An IPv4-mapped IPv6 address
// (::ffff:a.b.c.d) is truncated with the IPv4 prefix. Ports and RFC 7239
// parameters are kept, and addresses come out in canonical form. Entries
// that are not addresses (a host name such as "localhost:8080", "unknown",
// an obfuscated "_hidden") are left as they are; an entry that looks like
// an address but does not parse ("1.2.3") becomes Redacted.
//
// It is a processors.Redactor: every record the pipeline dead-letters —
// also one that failed before this processor ran — is stored with its raw
// data, event and error text stripped of full addresses, unless
// keep_raw_ip_in_dead_letters is set.
type AnonymizeIP struct {
	v4, v6  int
	keepRaw bool
}

// Validate reports every invalid option, each naming its key and wrapping
// ErrOption: a prefix out of range.
func (o AnonymizeIPOptions) Validate() error {
	var errs []error
	if p := o.IPv4Prefix; p != nil && (*p < 0 || *p > 32) {
		errs = append(errs, optionError("ipv4_prefix", "%d is out of range; want 0 to 32 bits to keep", *p))
	}
	if p := o.IPv6Prefix; p != nil && (*p < 0 || *p > 128) {
		errs = append(errs, optionError("ipv6_prefix", "%d is out of range; want 0 to 128 bits to keep", *p))
	}
	return errors.Join(errs...)
}

// NewAnonymizeIP returns an AnonymizeIP processor. Options that do not
// Validate are an error wrapping ErrOption.
func NewAnonymizeIP(o AnonymizeIPOptions) (*AnonymizeIP, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	a := &AnonymizeIP{v4: DefaultIPv4Prefix, v6: DefaultIPv6Prefix, keepRaw: o.KeepRawIPInDeadLetters}
	if o.IPv4Prefix != nil {
		a.v4 = *o.IPv4Prefix
	}
	if o.IPv6Prefix != nil {
		a.v6 = *o.IPv6Prefix
	}
	return a, nil
}

// Process truncates the addresses of every parsed message. It never fails
// and does not block.
func (a *AnonymizeIP) Process(_ context.Context, batch []*processors.Message) ([]*processors.Message, error) {
	for _, m := range batch {
		if !m.Parsed || m.Failed() != nil {
			continue
		}
		a.event(&m.Event.ClientIP, m.Event.ForwardedFor)
	}
	return batch, nil
}

// event truncates a client address and forwarded-for entries in place.
func (a *AnonymizeIP) event(clientIP *string, forwardedFor []string) {
	if *clientIP != "" {
		*clientIP = a.clientIP(*clientIP)
	}
	for i, f := range forwardedFor {
		forwardedFor[i] = a.Anonymize(f)
	}
}

// Redact implements processors.Redactor: it returns a copy of m whose raw
// data, event addresses and failure text have every address truncated,
// marked Redacted; with keep_raw_ip_in_dead_letters it returns m. m is not
// changed.
func (a *AnonymizeIP) Redact(m *processors.Message) *processors.Message {
	if a.keepRaw {
		return m
	}
	c := *m
	c.Record.Data = a.ScrubText(m.Record.Data)
	if m.Parsed {
		c.Event.ForwardedFor = append([]string(nil), m.Event.ForwardedFor...) // shared with the sinks: copy before changing
		a.event(&c.Event.ClientIP, c.Event.ForwardedFor)
	}
	if f := m.Failed(); f != nil && f.Err != nil {
		if msg := string(a.ScrubText([]byte(f.Err.Error()))); msg != f.Err.Error() {
			scrubbed := *f
			scrubbed.Err = &scrubbedError{msg: msg, err: f.Err}
			c.FailWith(scrubbed)
		}
	}
	c.Redacted = true
	return &c
}

// scrubbedError is an error whose text had addresses truncated; errors.Is
// and errors.As still see the original.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// clientIP truncates a client address. The result is an address or empty
// (client_ip is an ip field in OpenSearch): a port or brackets are
// dropped, and something address-like that does not parse is dropped.
// Text that is no address at all is left as it is.
func (a *AnonymizeIP) clientIP(s string) string {
	if addr, _, _, ok := splitNode(s); ok {
		return a.mask(addr).String()
	}
	if looksLikeAddress(s) {
		return ""
	}
	return s
}

// Anonymize returns s with its address truncated: s may be any
// forwarded-for entry form (see AnonymizeIP). Entries that are not
// addresses are returned unchanged, address-like ones that do not parse
// as Redacted. It is safe for concurrent use.
func (a *AnonymizeIP) Anonymize(s string) string {
	if out, ok := a.node(s); ok {
		return out
	}
	if strings.Contains(s, "=") {
		return a.forwarded(s)
	}
	if looksLikeAddress(s) {
		return Redacted
	}
	return s
}

// node truncates a node: an address, optionally bracketed (IPv6) and with
// a port. ok is false when s is not one.
func (a *AnonymizeIP) node(s string) (string, bool) {
	addr, bracketed, port, ok := splitNode(s)
	if !ok {
		return "", false
	}
	out := a.mask(addr).String()
	if bracketed {
		out = "[" + out + "]"
	}
	if port != "" {
		out += ":" + port
	}
	return out, true
}

// splitNode parses a node: "addr", "[v6]", "addr:port" (IPv4) or
// "[v6]:port". IPv4 parts may have leading zeros.
func splitNode(s string) (addr netip.Addr, bracketed bool, port string, ok bool) {
	if addr, ok := parseAddr(s); ok {
		return addr, false, "", true
	}
	host := s
	if i := strings.LastIndexByte(s, ':'); i > 0 && isPort(s[i+1:]) && (s[i-1] == ']' || !strings.Contains(s[:i], ":")) {
		host, port = s[:i], s[i+1:]
	}
	if len(host) > 2 && host[0] == '[' && host[len(host)-1] == ']' {
		addr, err := netip.ParseAddr(host[1 : len(host)-1])
		return addr, true, port, err == nil
	}
	if port != "" {
		addr, ok := parseIPv4(host)
		return addr, false, port, ok
	}
	return netip.Addr{}, false, "", false
}

// forwarded truncates the for= and by= values of an RFC 7239 forwarded
// element ("for=192.0.2.60;proto=http;by=203.0.113.43"), keeping the
// other pairs and the spelling of the keys. A value with a port or an
// IPv6 address is quoted, as RFC 7239 requires.
func (a *AnonymizeIP) forwarded(s string) string {
	pairs := strings.Split(s, ";")
	for i, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "for", "by":
		default:
			continue
		}
		val := strings.TrimSpace(v)
		quoted := len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"'
		if quoted {
			val = val[1 : len(val)-1]
		}
		out, ok := a.node(val)
		switch {
		case ok:
		case val == "unknown" || strings.HasPrefix(val, "_") || !looksLikeAddress(val):
			continue
		default:
			out = Redacted
		}
		if quoted || strings.ContainsAny(out, ":[") {
			out = `"` + out + `"`
		}
		pairs[i] = k + "=" + out
	}
	return strings.Join(pairs, ";")
}

// mask zeroes the low bits of addr (dropping any zone, which can name a
// host's interface).
func (a *AnonymizeIP) mask(addr netip.Addr) netip.Addr {
	addr = addr.WithZone("")
	if addr.Is4In6() {
		p, _ := addr.Unmap().Prefix(a.v4)
		return netip.AddrFrom16(p.Addr().As16())
	}
	bits := a.v6
	if addr.Is4() {
		bits = a.v4
	}
	p, _ := addr.Prefix(bits)
	return p.Addr()
}

// parseAddr parses an address as netip does, and also an IPv4 address
// with leading zeros in its parts ("203.0.113.077", read as decimal).
func parseAddr(s string) (netip.Addr, bool) {
	if addr, err := netip.ParseAddr(s); err == nil {
		return addr, true
	}
	return parseIPv4(s)
}

// parseIPv4 parses four dot-separated decimal parts of one to three
// digits each, at most 255, leading zeros allowed.
func parseIPv4(s string) (netip.Addr, bool) {
	var b [4]byte
	for i := range 4 {
		end := strings.IndexByte(s, '.')
		if i == 3 {
			end = len(s)
		}
		if end < 1 || end > 3 {
			return netip.Addr{}, false
		}
		n := 0
		for _, c := range s[:end] {
			if c < '0' || c > '9' {
				return netip.Addr{}, false
			}
			n = n*10 + int(c-'0')
		}
		if n > 255 {
			return netip.Addr{}, false
		}
		b[i] = byte(n)
		if i < 3 {
			s = s[end+1:]
		}
	}
	return netip.AddrFrom4(b), true
}

func isPort(s string) bool {
	if s == "" || len(s) > 5 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// looksLikeAddress reports text made only of what address literals are
// made of (hex digits, '.', ':', '[', ']', '%', 'x'), with a digit and a
// separator: "1.2.3", "0x7f.1", "[2001:db8::g]". Host names have other
// letters and are not.
func looksLikeAddress(s string) bool {
	digit, sep := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digit = true
		case c == '.' || c == ':':
			sep = true
		case c >= 'a' && c <= 'f', c >= 'A' && c <= 'F', c == '[', c == ']', c == '%', c == 'x', c == 'X':
		default:
			return false
		}
	}
	return digit && sep
}

// addrByte reports a byte that can be part of an IPv4 or IPv6 literal.
func addrByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '.' || c == ':'
}

// escapeLen is 3 for a URL escape (%XX) at text[i], else 1.
func escapeLen(text []byte, i int) int {
	if text[i] == '%' && i+2 < len(text) && isHex(text[i+1]) && isHex(text[i+2]) {
		return 3
	}
	return 1
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }
