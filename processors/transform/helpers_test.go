package transform_test

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"testing"

	"github.com/leasehold/leasehold/cloudfront"
	"github.com/leasehold/leasehold/internal/dev/geoiptest"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/worker"
)

// cloudfrontFixture is the CloudFront package's fixture (see
// cloudfront/testdata/README.md), found from this package's folder.
const cloudfrontFixture = "../../cloudfront/testdata/E1EXAMPLE.2019-12-04-21.mixed-33-fields.log"

// testGeoDBs writes the generated test GeoIP databases (internal/dev/geoiptest)
// into a temporary folder and returns their paths.
func testGeoDBs(t testing.TB) geoiptest.Files {
	t.Helper()
	return geoiptest.Databases(t)
}

// fixtureRecords returns the Kinesis record data of every line of the
// CloudFront fixture, as the ingester builds it (cloudfront.AppendRecord).
func fixtureRecords(t testing.TB) [][]byte {
	t.Helper()
	f, err := os.Open(cloudfrontFixture)
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
