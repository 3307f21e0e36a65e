package jsonstr

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// TestAppendIsEncodingJSONs: both variants, from a string and from bytes,
// give encoding/json's bytes for every kind of string: escapes, HTML
// characters, control bytes, invalid UTF-8, U+2028, and 2,000 random ones.
func TestAppendIsEncodingJSONs(t *testing.T) {
	strs := []string{"", "plain", "a\tb <x> & \"q\" \\ /", "\x00\x01\x1f\x7f\b\f\n\r", "\xff\xfe", "é€𝄞", "\u2028\u2029", "bad \xe2\x82 end", "cut \xf0\x9d\x84"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		strs = append(strs, string(b))
	}
	for _, html := range []bool{false, true} {
		for _, s := range strs {
			var want bytes.Buffer
			enc := json.NewEncoder(&want)
			enc.SetEscapeHTML(html)
			if err := enc.Encode(s); err != nil {
				t.Fatal(err)
			}
			w := bytes.TrimSuffix(want.Bytes(), []byte("\n"))
			got, gotBytes := Append(nil, s), Append(nil, []byte(s))
			if html {
				got, gotBytes = AppendHTML(nil, s), AppendHTML(nil, []byte(s))
			}
			if !bytes.Equal(got, w) || !bytes.Equal(gotBytes, w) {
				t.Fatalf("html %v, %q:\n got %q (from bytes %q)\nwant %q", html, s, got, gotBytes, w)
			}
		}
	}
}

func TestAppendDoesNotAllocate(t *testing.T) {
	s := []byte("é€𝄞 <a> \xff \u2028 and some plain text")
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = AppendHTML(buf[:0], s) }); n != 0 {
		t.Fatalf("%v allocations per string, want 0", n)
	}
}
