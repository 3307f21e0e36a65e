package filesink

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// appendJSON appends l as encoding/json's Encoder writes it (HTML
// escaping on, invalid UTF-8 as U+FFFD) and a newline.
// TestAppendJSONIsEncodingJSONs pins that the bytes are the same.
func (l *Line) appendJSON(b []byte) []byte {
	return appendLine(b, l, l.Data)
}

// appendLine appends l with data as its data field, so that Process
// writes a record's bytes without copying them into a string first.
// Process writes a line per record; json.Encoder's reflection was about a
// twentieth of a worker's CPU at the steady workload of
// `make bench-reads` (2.7 times as long a line, two allocations).
func appendLine[S []byte | string](b []byte, l *Line, data S) []byte {
	b = append(b, `{"worker_id":`...)
	b = appendJSONString(b, l.WorkerID)
	b = append(b, `,"shard_id":`...)
	b = appendJSONString(b, l.ShardID)
	if l.Epoch != 0 {
		b = append(b, `,"epoch":`...)
		b = strconv.AppendInt(b, l.Epoch, 10)
	}
	b = append(b, `,"sequence_number":`...)
	b = appendJSONString(b, l.SequenceNumber)
	b = append(b, `,"sub_sequence_number":`...)
	b = strconv.AppendInt(b, l.SubSequenceNumber, 10)
	b = append(b, `,"partition_key":`...)
	b = appendJSONString(b, l.PartitionKey)
	b = append(b, `,"data":`...)
	b = appendJSONString(b, data)
	b = append(b, `,"processed_at":"`...)
	b = l.ProcessedAt.AppendFormat(b, time.RFC3339Nano)
	return append(b, "\"}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString is encoding/json's string encoding with HTML escaping.
// event's appendString is the same loop with HTML escaping off, for
// strings only. One shared copy (an internal package, string and []byte,
// either escaping) was tried: event.BenchmarkAppendJSON went from 745 to
// 830–900 ns per event, on the sinks' hot path, so each keeps its own.
func appendJSONString[S []byte | string](b []byte, s S) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(string(s[i:min(len(s), i+utf8.UTFMax)])) // small: no allocation
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
