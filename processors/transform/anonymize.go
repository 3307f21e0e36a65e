package transform

import (
	"context"
	"net/netip"

	"github.com/leasehold/leasehold/processors"
)

// The defaults of AnonymizeIPOptions: keep an IPv4 /24 and an IPv6 /48,
// the truncation commonly accepted as no longer identifying one household
// while still locating its network.
const (
	DefaultIPv4Prefix = 24
	DefaultIPv6Prefix = 48
)

// AnonymizeIPOptions configures the anonymize_ip processor. A nil field
// takes its default.
type AnonymizeIPOptions struct {
	// IPv4Prefix is how many leading bits of an IPv4 address to keep
	// (0–32; default DefaultIPv4Prefix); the rest are zeroed.
	IPv4Prefix *int `yaml:"ipv4_prefix"`
	// IPv6Prefix is how many leading bits of an IPv6 address to keep
	// (0–128; default DefaultIPv6Prefix).
	IPv6Prefix *int `yaml:"ipv6_prefix"`
}

// AnonymizeIP is the anonymize_ip processor: it zeroes the low bits of
// Event.ClientIP and of every address in Event.ForwardedFor. It must run
// after geoip, which needs the whole address. It is immutable and safe for
// concurrent use.
//
// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is truncated with the IPv4
// prefix and keeps its form. ForwardedFor entries of the form "addr:port"
// or "[addr]:port" keep their port; entries that are not addresses (a
// host name such as "localhost:8080", "unknown") are left as they are.
// The raw record (Message.Record.Data, which dead-letter destinations
// keep) is not changed.
type AnonymizeIP struct {
	v4, v6 int
}

// NewAnonymizeIP returns an AnonymizeIP processor. A prefix out of range
// is an error wrapping ErrOption.
func NewAnonymizeIP(o AnonymizeIPOptions) (*AnonymizeIP, error) {
	a := &AnonymizeIP{v4: DefaultIPv4Prefix, v6: DefaultIPv6Prefix}
	if o.IPv4Prefix != nil {
		if *o.IPv4Prefix < 0 || *o.IPv4Prefix > 32 {
			return nil, optionError("ipv4_prefix", "%d is out of range; want 0 to 32 bits to keep", *o.IPv4Prefix)
		}
		a.v4 = *o.IPv4Prefix
	}
	if o.IPv6Prefix != nil {
		if *o.IPv6Prefix < 0 || *o.IPv6Prefix > 128 {
			return nil, optionError("ipv6_prefix", "%d is out of range; want 0 to 128 bits to keep", *o.IPv6Prefix)
		}
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
		if m.Event.ClientIP != "" {
			m.Event.ClientIP = a.Anonymize(m.Event.ClientIP)
		}
		for i, f := range m.Event.ForwardedFor {
			m.Event.ForwardedFor[i] = a.Anonymize(f)
		}
	}
	return batch, nil
}

// Anonymize returns s with its address truncated: s may be an address, or
// an address with a port ("1.2.3.4:80", "[2001:db8::1]:443"). Anything
// else is returned unchanged. It is safe for concurrent use.
func (a *AnonymizeIP) Anonymize(s string) string {
	if addr, err := netip.ParseAddr(s); err == nil {
		if masked := a.mask(addr); masked != addr {
			return masked.String()
		}
		return s
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if masked := a.mask(ap.Addr()); masked != ap.Addr() {
			return netip.AddrPortFrom(masked, ap.Port()).String()
		}
	}
	return s
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
