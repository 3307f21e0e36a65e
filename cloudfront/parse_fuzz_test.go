package cloudfront_test

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/leasehold/leasehold/cloudfront"
	"github.com/leasehold/leasehold/event"
)

// FuzzParseLine proves that no header and line make the parsers panic, and
// that every event they accept validates and encodes to valid JSON.
func FuzzParseLine(f *testing.F) {
	f.Add("", []byte(line33))
	f.Add(header33, []byte(line33+"\r\n"))
	f.Add("date time cs-uri-stem cs-uri-query cs(User-Agent) x-forwarded-for",
		[]byte("2020-01-01\t00:00:00\t/a%2520b%FF.jpg?x\tdownload=1%25\tUser-Agent:%09x\t1.1.1.1,%20 ,::1"))
	f.Add("timestamp cs-uri-stem", []byte("1575493351.123\t/a?b=c"))
	f.Add("", []byte("\t\t\t\t\t\t\t\t\t\t\t"))
	f.Add("", []byte("%\t%%\t%2\t%25%\t\xff\xfe\t-\t-\t-\t-\t-\t-\t-"))
	// Found by fuzzing: an empty (not "-") request id, and the zero time.
	f.Add("", []byte("0001-01-01\t00:00:00\t000\t0\t0000000000000\t000\t\t00000000000\t0\t\t00000000000000\t\t\t000\t\t\t\t\t00\t\t\t\t\t\t\t\t\t\t\t\t\t\t"))
	f.Add("", []byte("2020-01-01\t00:00:00\t\t0\t\t\t\t\t\t\t\t\t\t\t\t"))
	if data, err := os.ReadFile(fixturePath(f)); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			f.Add("", []byte(line))
		}
	}
	layout33, err := cloudfront.NewLayout(strings.Fields(header33))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, header string, line []byte) {
		l := layout33
		if header != "" {
			if l, err = cloudfront.NewLayout(strings.Fields(header)); err != nil {
				return
			}
		}
		ev, err := cloudfront.ParseLine(l, line)
		if err != nil {
			var le *cloudfront.LineError
			if !errors.As(err, &le) {
				t.Fatalf("error %v is not a *LineError", err)
			}
			return
		}
		checkFuzzEvent(t, &ev)
		// The same line as a Kinesis record, and through a Reader.
		rec := cloudfront.AppendRecord(nil, l, line)
		if ev2, err := cloudfront.ParseRecord(rec); err == nil {
			checkFuzzEvent(t, &ev2)
		}
		r := cloudfront.NewReader(strings.NewReader(l.Directive() + "\n" + string(line)))
		for range 3 {
			ev3, err := r.Next()
			if err == nil {
				checkFuzzEvent(t, &ev3)
			}
		}
	})
}

// FuzzRealtimeParse checks the real-time parser the same way.
func FuzzRealtimeParse(f *testing.F) {
	f.Add([]byte(realtimeRecord(baseRealtime())))
	f.Add([]byte("1.5\t%zz?%\t\xff"))
	f.Add([]byte("000000000.000\t00000000000\t00000\t000\t0000000\t000\t00000\t\t0\t\t0\t\t\t00\t0\t0\t\t\t0\t0\t0\t0\t0\t0\t\t0\t0\t\t0\t0\t\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t"))
	p, err := cloudfront.NewRealtimeParser(realtimeAll)
	if err != nil {
		f.Fatal(err)
	}
	short, err := cloudfront.NewRealtimeParser([]string{"timestamp", "cs-uri-stem", "asn"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, p := range []*cloudfront.RealtimeParser{p, short} {
			if ev, err := p.Parse(data); err == nil {
				checkFuzzEvent(t, &ev)
			}
		}
	})
}

func checkFuzzEvent(t *testing.T, ev *event.Event) {
	t.Helper()
	if err := ev.Validate(); err != nil {
		t.Fatalf("accepted event does not validate: %v", err)
	}
	out := ev.AppendJSON(nil)
	if !json.Valid(out) || !utf8.Valid(out) {
		t.Fatalf("invalid JSON: %q", out)
	}
}
