package kpl_test

import (
	"errors"
	"fmt"

	"github.com/leasehold/leasehold/kpl"
)

func ExampleAggregator() {
	a, err := kpl.NewAggregator(kpl.Config{MaxRecords: 2})
	if err != nil {
		panic(err)
	}
	var out []kpl.Record
	for _, line := range []string{`{"n":1}`, `{"n":2}`, `{"n":3}`} {
		err := a.Add("asset-42", "", []byte(line))
		if errors.Is(err, kpl.ErrFull) {
			rec, _ := a.Drain()
			out = append(out, rec)
			err = a.Add("asset-42", "", []byte(line))
		}
		if err != nil {
			panic(err)
		}
	}
	if rec, ok := a.Drain(); ok {
		out = append(out, rec)
	}
	for _, rec := range out {
		fmt.Println(rec.PartitionKey, rec.Count, rec.Size())
	}
	// Output:
	// asset-42 2 64
	// asset-42 1 51
}

func ExampleDeaggregate() {
	a, _ := kpl.NewAggregator(kpl.Config{})
	_ = a.Add("a", "", []byte("first"))
	_ = a.Add("b", "", []byte("second"))
	rec, _ := a.Drain()

	recs, err := kpl.Deaggregate(rec.Data)
	if err != nil {
		panic(err) // a malformed aggregate: dead-letter the raw record
	}
	for _, r := range recs {
		fmt.Println(r.SubSequence, r.PartitionKey, string(r.Data), r.Aggregated)
	}
	plain, _ := kpl.Deaggregate([]byte(`{"event":"view"}`))
	fmt.Println(len(plain), plain[0].Aggregated)
	// Output:
	// 0 a first true
	// 1 b second true
	// 1 false
}
