package transform_test

import (
	"testing"

	"github.com/leasehold/leasehold/processors/transform"
)

// Issue 11 follow-up: the raw-text scrubber missed an address glued to
// hex letters, percent-encoded IPv6, and IPv4 written as an integer or in
// hex. What can be told from ordinary data is truncated now; the rest is
// listed in ScrubText's documentation and must stay untouched here.
func TestScrubTextForms(t *testing.T) {
	a, _ := transform.NewAnonymizeIP(transform.AnonymizeIPOptions{})
	tests := []struct{ name, in, want string }{
		{"glued to hex letters", "cafe203.0.113.77", "cafe203.0.113.0"},
		{"glued to hex letters, with a port", "deadbeef203.0.113.77:8080", "deadbeef203.0.113.0:8080"},
		{"after a colon", "ip:203.0.113.77", "ip:203.0.113.0"},
		{"after hex and a colon", "ff:203.0.113.77 deadbeef:198.51.100.17", "ff:203.0.113.0 deadbeef:198.51.100.0"},
		{"hex letters after", "203.0.113.77cafe", "203.0.113.0cafe"},
		{"two in one run", "203.0.113.77ab198.51.100.17", "203.0.113.0ab198.51.100.0"},
		{"after a lone colon, IPv6", "addr:2001:db8:cafe:1::42 x", "addr:2001:db8:cafe:: x"},
		{"percent-encoded IPv6", "ip=2001%3Adb8%3Acafe%3A1%3A%3A42&x=1", "ip=2001%3Adb8%3Acafe%3A%3A&x=1"},
		{"percent-encoded IPv6, lower case", "for%3D2001%3adb8%3a%3a1", "for%3D2001%3Adb8%3A%3A"},
		{"percent-encoded mapped IPv4", "%3A%3Affff%3A203.0.113.77", "%3A%3Affff%3A203.0.113.0"},
		{"URL host as an integer", "GET http://3405803853/x", "GET http://203.0.113.0/x"},
		{"URL host in hex", "https://0xcb00714d:8443/", "https://203.0.113.0:8443/"},
		{"URL host in dotted hex", "http://0xcb.0x0.0x71.0x4d/", "http://203.0.113.0/"},
		{"URL host in octal", "http://0313.0.0161.0115/", "http://203.0.113.0/"},
		{"URL host with fewer parts", "http://203.29005/", "http://203.0.113.0/"},
		{"URL host after user info", "ftp://me@3405803853/f", "ftp://me@203.0.113.0/f"},
		{"percent-encoded URL", "ref=https%3A%2F%2F3405803853%2Fpage", "ref=https%3A%2F%2F203.0.113.0%2Fpage"},
		{"a plain URL host still", "http://203.0.113.77:80/", "http://203.0.113.0:80/"},

		// Ordinary data that must come back unchanged.
		{"an integer", "bytes=3405803853 took=2130706433", "bytes=3405803853 took=2130706433"},
		{"a hex error code", "HRESULT 0x80070005", "HRESULT 0x80070005"},
		{"an integer host of another scheme", "s3://2024/key kafka://3405803853", "s3://2024/key kafka://3405803853"},
		{"a host name of digits and letters", "https://cafe.example/0x7f000001", "https://cafe.example/0x7f000001"},
		{"an OID", "oid 1.3.6.1.4.1.311.21", "oid 1.3.6.1.4.1.311.21"},
		{"five parts", "1.2.3.4.5", "1.2.3.4.5"},
		{"a long version", "Edg/120.0.2210.91 Windows 10.0.19041.1", "Edg/120.0.2210.91 Windows 10.0.19041.1"},
		{"a time", "at 21:02:31.123 took 0.001", "at 21:02:31.123 took 0.001"},
		{"an encoded time", "t=10%3A30%3A00", "t=10%3A30%3A00"},
		{"an encoded MAC address", "mac=12%3A34%3A56%3A78%3A9a%3Abc", "mac=12%3A34%3A56%3A78%3A9a%3Abc"},
		{"a number glued to a quad", "11203.0.113.77", "11203.0.113.77"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(a.ScrubText([]byte(tc.in))); got != tc.want {
				t.Errorf("ScrubText(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
