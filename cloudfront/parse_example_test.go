package cloudfront_test

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/leasehold/leasehold/cloudfront"
)

func ExampleReader() {
	file := "#Version: 1.0\n" +
		"#Fields: date time cs-method cs-uri-stem sc-status x-edge-request-id\n" +
		"2024-05-01\t10:00:00\tGET\t/brand/logo%2520dark.png\t200\tid-1\n" +
		"2024-05-01\t10:00:01\tGET\n" + // truncated
		"2024-05-01\t10:00:02\tGET\t/brand/kit.zip\t200\tid-2\n"
	r := cloudfront.NewReader(strings.NewReader(file)) // gzip.NewReader(obj) for a real file
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var le *cloudfront.LineError
		if errors.As(err, &le) {
			fmt.Println("skipped:", le)
			continue
		}
		if err != nil {
			panic(err) // the underlying reader failed
		}
		fmt.Println(ev.EventID, ev.EventType, ev.URI)
	}
	// Output:
	// id-1 view /brand/logo dark.png
	// skipped: cloudfront: line 4: wrong field count: has 3 fields, layout has 6
	// id-2 download /brand/kit.zip
}

func ExampleParseRecord() {
	// What an ingester puts in a Kinesis record: the bare line for a
	// standard layout, a #Fields header first for anything else.
	l, _ := cloudfront.NewLayout([]string{"date", "time", "cs-uri-stem", "x-edge-request-id"})
	rec := cloudfront.AppendRecord(nil, l, []byte("2024-05-01\t10:00:00\t/v/a.mp4\tid-9\n"))
	fmt.Printf("%q\n", rec)

	ev, err := cloudfront.ParseRecord(rec)
	fmt.Println(ev.EventID, ev.EventTime, ev.URI, err)
	// Output:
	// "#Fields: date time cs-uri-stem x-edge-request-id\n2024-05-01\t10:00:00\t/v/a.mp4\tid-9"
	// id-9 2024-05-01 10:00:00 +0000 UTC /v/a.mp4 <nil>
}

func ExampleNewRealtimeParser() {
	// The Fields of the real-time log configuration, in order.
	p, err := cloudfront.NewRealtimeParser([]string{"timestamp", "c-ip", "sc-status", "cs-method", "cs-uri-stem", "x-edge-request-id"})
	if err != nil {
		panic(err)
	}
	ev, err := p.Parse([]byte("1714557600.250\t203.0.113.9\t200\tGET\t/v/a.mp4?download=1\tid-7\n"))
	fmt.Println(ev.EventTime, ev.ClientIP, ev.URI, ev.Query, ev.EventType, err)

	_, err = cloudfront.NewRealtimeParser([]string{"timestamp", "cs(User-Agent)"})
	fmt.Println(err)
	// Output:
	// 2024-05-01 10:00:00.25 +0000 UTC 203.0.113.9 /v/a.mp4 download=1 download <nil>
	// cloudfront: unknown real-time field "cs(User-Agent)" (at position 2)
}
