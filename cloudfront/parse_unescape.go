package cloudfront

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// unhex returns the value of the hex digit c.
func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// escapeAt decodes the %XX escape at s[i], if there is a valid one.
func escapeAt(s []byte, i int) (byte, bool) {
	if i+2 >= len(s) || s[i] != '%' {
		return 0, false
	}
	hi, ok1 := unhex(s[i+1])
	lo, ok2 := unhex(s[i+2])
	return hi<<4 | lo, ok1 && ok2
}

// appendUnescape appends s with its RFC 1738 %XX escapes decoded. A '%' that
// does not start a valid escape is kept as a literal '%'; '+' is left alone
// (it is not a space outside form bodies).
//
// With twice set it also undoes a second layer of encoding, and only that: an
// encoded '%' ("%25") directly followed by two hex digits decodes to the byte
// those digits encode, so "%2520" becomes " " while "%25" alone, or "%25zz",
// stays "%" / "%zz". This is the case CloudFront produces when a request that
// was already percent-encoded is logged: it escapes the request's '%' again.
func appendUnescape(dst, s []byte, twice bool) []byte {
	for i := 0; i < len(s); {
		j := bytes.IndexByte(s[i:], '%')
		if j < 0 {
			return append(dst, s[i:]...)
		}
		dst = append(dst, s[i:i+j]...)
		i += j
		c, ok := escapeAt(s, i)
		if !ok {
			dst = append(dst, '%')
			i++
			continue
		}
		if twice && c == '%' {
			if c2, ok := doubleAt(s, i+3); ok {
				dst = append(dst, c2)
				i += 5
				continue
			}
		}
		dst = append(dst, c)
		i += 3
	}
	return dst
}

// doubleAt decodes the two hex digits at s[i:i+2] that follow an encoded '%'.
func doubleAt(s []byte, i int) (byte, bool) {
	if i+1 >= len(s) {
		return 0, false
	}
	hi, ok1 := unhex(s[i])
	lo, ok2 := unhex(s[i+1])
	return hi<<4 | lo, ok1 && ok2
}

// appendFormDecode decodes a query-string key or value: like appendUnescape
// with twice set, and a literal '+' as a space (an encoded "%2B" stays '+').
func appendFormDecode(dst []byte, s string) []byte {
	for {
		seg, rest, found := strings.Cut(s, "+")
		dst = appendUnescape(dst, []byte(seg), true)
		if !found {
			return dst
		}
		dst = append(dst, ' ')
		s = rest
	}
}

// cp1252 holds the characters Windows-1252 gives bytes 0x80–0x9F; 0 where
// it defines none (those bytes are read as Latin-1: the C1 control of the
// same number). Bytes 0xA0–0xFF are Latin-1 in both.
var cp1252 = [32]rune{
	'€', 0, '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', 0, 'Ž', 0,
	0, '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', 0, 'ž', 'Ÿ',
}

// appendLatin1Fallback appends s to dst as valid UTF-8: valid UTF-8
// sequences are kept, and every byte that is not part of one is read as a
// Windows-1252 character (the superset of ISO-8859-1 that browsers use for
// "Latin-1"). So a Latin-1 "%E9" decodes to "é" instead of U+FFFD, and no
// byte's information is lost: the mapping is one-to-one.
func appendLatin1Fallback(dst, s []byte) []byte {
	for len(s) > 0 {
		r, size := utf8.DecodeRune(s)
		if r == utf8.RuneError && size <= 1 {
			c := s[0]
			r = rune(c)
			if c >= 0x80 && c < 0xA0 && cp1252[c-0x80] != 0 {
				r = cp1252[c-0x80]
			}
			dst = utf8.AppendRune(dst, r)
			s = s[1:]
			continue
		}
		dst = append(dst, s[:size]...)
		s = s[size:]
	}
	return dst
}
