package faultproxy_test

import (
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/leasehold/leasehold/internal/dev/faultproxy"
)

// A Kinesis client whose PutRecords calls see a fifth of their entries
// throttled or failed, and one call in ten refused or reset.
func Example() {
	fp, err := faultproxy.New(nil, faultproxy.Config{
		Seed:            1,
		EntryFailRate:   0.2,
		ThrottleRate:    0.05,
		ServerErrorRate: 0.03,
		ResetRate:       0.02,
	})
	if err != nil {
		panic(err)
	}
	client := kinesis.NewFromConfig(aws.Config{Region: "us-east-1"}, func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String("http://127.0.0.1:4568") // the local Kinesis
		o.HTTPClient = &http.Client{Transport: fp}
	})
	_ = client // hand it to producer.New; fp.Stats() says what was injected
}
