package cloudfront

import "testing"

func TestAppendUnescape(t *testing.T) {
	tests := []struct {
		in          string
		once, twice string
	}{
		{"plain", "plain", "plain"},
		{"%20", " ", " "},
		{"a%2520b", "a%20b", "a b"},
		{"%09", "\t", "\t"},
		{"100%", "100%", "100%"},
		{"%25", "%", "%"},
		{"50%25off", "50%off", "50%off"},
		{"%25zz", "%zz", "%zz"},
		{"%252", "%2", "%2"},
		{"%2525", "%25", "%"},
		{"%", "%", "%"},
		{"%2", "%2", "%2"},
		{"%zz%41", "%zzA", "%zzA"},
		{"a+b", "a+b", "a+b"},
		{"a%2Fb%2fc", "a/b/c", "a/b/c"},
		{"%E2%82%AC", "€", "€"},
		{"%25E2%2582%25AC", "%E2%82%AC", "€"},
		{"%FF", "\xff", "\xff"},
		{"", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := string(appendUnescape(nil, []byte(tc.in), false)); got != tc.once {
				t.Errorf("once: %q, want %q", got, tc.once)
			}
			if got := string(appendUnescape(nil, []byte(tc.in), true)); got != tc.twice {
				t.Errorf("twice: %q, want %q", got, tc.twice)
			}
		})
	}
}

func TestAppendFormDecode(t *testing.T) {
	if got := string(appendFormDecode([]byte("x"), "a+b%2Bc%2520d")); got != "xa b+c d" {
		t.Fatalf("got %q", got)
	}
}
