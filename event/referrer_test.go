package event_test

import (
	"testing"

	"github.com/leasehold/leasehold/event"
)

func TestReferringDomain(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"http://www.example.com/", "example.com"},
		{"https://WWW.Example.COM:8443/path?q=1#x", "example.com"},
		{"https://test.com/global", "test.com"},
		{"https://user:pw@news.example.org/a", "news.example.org"},
		{"//cdn.example.net/x", "cdn.example.net"},
		{"example.com/page", "example.com"},
		{"http://[2001:db8::1]:8080/", "2001:db8::1"},
		{"http://[2001:db8::1", ""},
		{"android-app://com.google.android.gm/", "com.google.android.gm"},
		{"https://www.example.com./", "example.com"},
		{"http://www/", "www"},
		{"https://sub.www.example.com/", "sub.www.example.com"},
		{"not a url", ""},
		{"/relative/path", ""},
		{"https://bad host/", ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := event.ReferringDomain(tc.in); got != tc.want {
				t.Fatalf("ReferringDomain(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
