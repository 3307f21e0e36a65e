// Package jsonstr appends quoted JSON strings exactly as encoding/json
// writes them, without reflection or allocation: the event encoder and the
// file sink write a string per field of every record.
package jsonstr

import "unicode/utf8"

const hexDigits = "0123456789abcdef"

// Append appends s as a quoted JSON string, escaped as encoding/json does
// with HTML escaping off (an Encoder after SetEscapeHTML(false)): control
// characters, quote and backslash escaped, invalid UTF-8 as U+FFFD, and
// U+2028 and U+2029 escaped.
func Append[S []byte | string](dst []byte, s S) []byte { return appendQuoted(dst, s, false) }

// AppendHTML is Append with encoding/json's default HTML escaping, as
// json.Marshal and a new Encoder write: <, > and & as \u003c, \u003e and
// \u0026 besides.
func AppendHTML[S []byte | string](dst []byte, s S) []byte { return appendQuoted(dst, s, true) }

func appendQuoted[S []byte | string](dst []byte, s S, html bool) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && (!html || b != '<' && b != '>' && b != '&') {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		// At most UTFMax bytes: converting a []byte this short does not
		// allocate.
		c, size := utf8.DecodeRuneInString(string(s[i:min(len(s), i+utf8.UTFMax)]))
		switch {
		case c == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case c == '\u2028' || c == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
