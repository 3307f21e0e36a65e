package ingesttest

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"time"
)

// Header33 is the #Fields header of the current 33-field standard log.
const Header33 = "#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end"

var (
	edges    = []string{"LAX1", "SEA19-C1", "FRA56-P7", "NRT57-P2", "IAD89-C3", "LHR61-P1", "GRU3-C1"}
	agents   = []string{"Mozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)%20AppleWebKit/537.36%20(KHTML,%20like%20Gecko)%20Chrome/124.0.0.0%20Safari/537.36", "Mozilla/5.0%20(iPhone;%20CPU%20iPhone%20OS%2017_4%20like%20Mac%20OS%20X)%20AppleWebKit/605.1.15%20(KHTML,%20like%20Gecko)%20Version/17.4%20Mobile/15E148%20Safari/604.1", "curl/8.5.0", "Mozilla/5.0%20(compatible;%20Googlebot/2.1;%20+http://www.google.com/bot.html)"}
	referers = []string{"-", "https://www.example.com/campaign/spring", "https://app.example.com/library?folder=launch", "https://social.example.net/"}
	assets   = []string{"launch%2520film.mp4", "hero.jpg", "podcast-ep12.mp3", "brand-guide.pdf", "teaser_v3.webm"}
	results  = []string{"Hit", "Miss", "RefreshHit", "Hit", "Hit"}
	statuses = []string{"200", "200", "200", "206", "304", "404"}
	ctypes   = []string{"video/mp4", "image/jpeg", "audio/mpeg", "application/pdf", "video/webm"}
)

// LogFile returns a CloudFront standard log file (uncompressed): the
// #Version and 33-field #Fields headers, then n realistic data lines of
// the given hour, each ending in a newline. Lines look like production
// ones (encoded user agents, referrers, media paths, IPv4 and IPv6
// clients, ~400-500 bytes) and each has an x-edge-request-id unique to
// (seed, line index). The same arguments give the same bytes.
func LogFile(hour time.Time, n int, seed uint64) []byte {
	var b bytes.Buffer
	b.Grow(n*480 + 600)
	b.WriteString("#Version: 1.0\n")
	b.WriteString(Header33 + "\n")
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	hour = hour.UTC().Truncate(time.Hour)
	for i := range n {
		AppendLine(&b, r, hour.Add(time.Duration(r.IntN(3600))*time.Second), RequestID(seed, i))
	}
	return b.Bytes()
}

// RequestID returns the x-edge-request-id LogFile gives line i of the
// file made with seed: 56 characters, like CloudFront's.
func RequestID(seed uint64, i int) string {
	var raw [40]byte
	x := seed*0x9e3779b97f4a7c15 ^ uint64(i)
	for j := 0; j < len(raw); j += 8 {
		x += 0x9e3779b97f4a7c15 // splitmix64
		z := x
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		binary.LittleEndian.PutUint64(raw[j:], z^z>>31)
	}
	return base64.URLEncoding.EncodeToString(raw[:])[:54] + "=="
}

// AppendLine writes one 33-field line of time at and request id to b. It
// avoids fmt: tests built with -race generate tens of MB of lines.
func AppendLine(b *bytes.Buffer, r *rand.Rand, at time.Time, requestID string) {
	var num [32]byte
	tab := func(s string) { b.WriteString(s); b.WriteByte('\t') }
	itoa := func(v int) { b.Write(strconv.AppendInt(num[:0], int64(v), 10)); b.WriteByte('\t') }
	ftoa := func(v float64) { b.Write(strconv.AppendFloat(num[:0], v, 'f', 3, 64)); b.WriteByte('\t') }
	a := r.IntN(len(assets))
	size := 200 + r.IntN(5_000_000)
	res := results[r.IntN(len(results))]

	b.Write(at.AppendFormat(num[:0], "2006-01-02\t15:04:05\t"))
	tab(edges[r.IntN(len(edges))])
	itoa(size + 300)
	if r.IntN(5) == 0 {
		b.WriteString("2a02:cf40:")
		b.Write(strconv.AppendUint(num[:0], uint64(r.IntN(0xffff)), 16))
		b.WriteString("::")
		b.Write(strconv.AppendUint(num[:0], uint64(r.IntN(0xffff)), 16))
	} else {
		for k := range 4 {
			if k > 0 {
				b.WriteByte('.')
			}
			b.Write(strconv.AppendInt(num[:0], int64(1+r.IntN(254)), 10))
		}
	}
	b.WriteString("\tGET\td111111abcdef8.cloudfront.net\t/tenants/acme/assets/")
	b.Write(strconv.AppendUint(num[:0], uint64(r.Uint32()), 16))
	b.WriteByte('/')
	tab(assets[a])
	tab(statuses[r.IntN(len(statuses))])
	tab(referers[r.IntN(len(referers))])
	tab(agents[r.IntN(len(agents))])
	if r.IntN(3) == 0 {
		b.WriteString("utm_source=newsletter&v=")
		itoa(r.IntN(100))
	} else {
		tab("-")
	}
	tab("-")
	tab(res)
	tab(requestID)
	b.WriteString("assets.example.com\thttps\t")
	itoa(40 + r.IntN(400))
	ftoa(r.Float64() * 2)
	b.WriteString("-\tTLSv1.3\tTLS_AES_128_GCM_SHA256\t")
	tab(res)
	b.WriteString("HTTP/2.0\t-\t-\t")
	itoa(1024 + r.IntN(60000))
	ftoa(r.Float64())
	tab(res)
	tab(ctypes[a])
	b.Write(strconv.AppendInt(num[:0], int64(size), 10))
	b.WriteString("\t-\t-\n")
}

// Gzip compresses data as one gzip member, as CloudFront delivers logs.
func Gzip(data []byte) []byte {
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed) // the level is valid
	w.Write(data)                                   //nolint:errcheck // a bytes.Buffer does not fail
	w.Close()                                       //nolint:errcheck // a bytes.Buffer does not fail
	return b.Bytes()
}
