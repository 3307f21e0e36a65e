package transform_test

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/leasehold/leasehold/cloudfront"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/worker"
)

const (
	cloudfrontFixture = "E1EXAMPLE.2019-12-04-21.mixed-33-fields.log"
	cityDB            = "GeoIP2-City-Test.mmdb"
	asnDB             = "GeoLite2-ASN-Test.mmdb"
)

// sharedPath finds shared/testdata/<dir>/<name> beside the repository
// (where the workspace and CI put shared/) by walking up from the package
// directory.
func sharedPath(t testing.TB, dir, name string) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		p := filepath.Join(d, "shared", "testdata", dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		if filepath.Dir(d) == d {
			t.Fatalf("%s not found in a shared/testdata/%s above %s", name, dir, wd)
		}
	}
}

// fixtureRecords returns the Kinesis record data of every line of the
// CloudFront fixture, as the ingester builds it (cloudfront.AppendRecord).
func fixtureRecords(t testing.TB) [][]byte {
	t.Helper()
	f, err := os.Open(sharedPath(t, "cloudfront", cloudfrontFixture))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := cloudfront.NewReader(bufio.NewReader(f))
	var out [][]byte
	for {
		line, l, err := r.ReadLine()
		if err != nil {
			break
		}
		out = append(out, cloudfront.AppendRecord(nil, l, bytes.Clone(line)))
	}
	if len(out) == 0 {
		t.Fatal("no lines in the fixture")
	}
	return out
}

// messages wraps record data in messages of shard "shardId-000000000001".
func messages(data ...[]byte) []*processors.Message {
	out := make([]*processors.Message, len(data))
	for i, d := range data {
		out[i] = &processors.Message{Record: record(i, d)}
	}
	return out
}

func record(i int, data []byte) worker.Record {
	return worker.Record{
		StreamName:     "events",
		ShardID:        "shardId-000000000001",
		SequenceNumber: strconv.Itoa(49590000 + i),
		PartitionKey:   "pk",
		Data:           data,
	}
}
