package transform_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/leasehold/leasehold/processors/transform"
)

func TestAnonymizeIP(t *testing.T) {
	bits := func(n int) *int { return &n }
	tests := []struct {
		name    string
		opts    transform.AnonymizeIPOptions
		ip      string
		xff     []string
		wantIP  string
		wantXFF []string
	}{
		{"defaults v4", transform.AnonymizeIPOptions{}, "89.160.20.112", nil, "89.160.20.0", nil},
		{"defaults v6", transform.AnonymizeIPOptions{}, "2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6", nil, "2a02:cf40:add::", nil},
		{"v4 /16", transform.AnonymizeIPOptions{IPv4Prefix: bits(16)}, "89.160.20.112", nil, "89.160.0.0", nil},
		{"v4 /32 keeps all", transform.AnonymizeIPOptions{IPv4Prefix: bits(32)}, "89.160.20.112", nil, "89.160.20.112", nil},
		{"v4 /0 keeps none", transform.AnonymizeIPOptions{IPv4Prefix: bits(0)}, "89.160.20.112", nil, "0.0.0.0", nil},
		{"v6 /64", transform.AnonymizeIPOptions{IPv6Prefix: bits(64)}, "2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6", nil, "2a02:cf40:add:4002::", nil},
		{"v6 /128 keeps all", transform.AnonymizeIPOptions{IPv6Prefix: bits(128)}, "2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6", nil, "2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6", nil},
		{"ipv4-mapped uses the v4 prefix", transform.AnonymizeIPOptions{}, "::ffff:81.2.69.142", nil, "::ffff:81.2.69.0", nil},
		{"zone dropped", transform.AnonymizeIPOptions{}, "fe80::1:2:3:4%eth0", nil, "fe80::", nil},
		{"forwarded for: addresses, ports, names", transform.AnonymizeIPOptions{}, "",
			[]string{"81.2.69.142", "216.160.83.56:8080", "[2a02:cf40:add:4002::1]:443", "localhost:8080", "unknown", "2001:db8:1:2::5"},
			"", []string{"81.2.69.0", "216.160.83.0:8080", "[2a02:cf40:add::]:443", "localhost:8080", "unknown", "2001:db8:1::"}},
		{"invalid client ip unchanged", transform.AnonymizeIPOptions{}, "garbage", nil, "garbage", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := transform.NewAnonymizeIP(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			batch := messages([]byte("-"))
			batch[0].Parsed = true
			batch[0].Event.ClientIP = tc.ip
			batch[0].Event.ForwardedFor = slices.Clone(tc.xff)
			if _, err := a.Process(context.Background(), batch); err != nil {
				t.Fatal(err)
			}
			if got := batch[0].Event; got.ClientIP != tc.wantIP || !slices.Equal(got.ForwardedFor, tc.wantXFF) {
				t.Fatalf("client_ip %q forwarded_for %q, want %q %q", got.ClientIP, got.ForwardedFor, tc.wantIP, tc.wantXFF)
			}
		})
	}
}

func TestAnonymizeIPOptionErrors(t *testing.T) {
	bits := func(n int) *int { return &n }
	tests := []struct {
		name string
		opts transform.AnonymizeIPOptions
		want string
	}{
		{"v4 too long", transform.AnonymizeIPOptions{IPv4Prefix: bits(33)}, "ipv4_prefix: 33 is out of range; want 0 to 32"},
		{"v4 negative", transform.AnonymizeIPOptions{IPv4Prefix: bits(-1)}, "ipv4_prefix: -1"},
		{"v6 too long", transform.AnonymizeIPOptions{IPv6Prefix: bits(129)}, "ipv6_prefix: 129 is out of range; want 0 to 128"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := transform.NewAnonymizeIP(tc.opts)
			if !errors.Is(err, transform.ErrOption) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrOption containing %q", err, tc.want)
			}
		})
	}
}
