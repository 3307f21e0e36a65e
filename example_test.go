package leasehold_test

import (
	"context"
	"log"
	"strings"

	"github.com/leasehold/leasehold"
	"github.com/leasehold/leasehold/processors"
)

// A worker with a processor of your own. leasehold.yaml names the stream,
// the lease table and the pipeline, in which tag_campaign is a stage like
// the built-ins (see README: Writing a processor). AWS credentials, region
// and endpoints come from the SDK's default chain.
func Example() {
	tagCampaign := processors.ProcessorFunc(func(_ context.Context, batch []*processors.Message) ([]*processors.Message, error) {
		for _, m := range batch {
			if strings.Contains(m.Event.Query, "utm_campaign=") {
				m.Event.EventType = "campaign_" + m.Event.EventType
			}
		}
		return batch, nil
	})
	// Runs until SIGINT or SIGTERM, then checkpoints, releases its leases and returns.
	if err := leasehold.RunFile(context.Background(), "leasehold.yaml", leasehold.WithProcessor("tag_campaign", tagCampaign), leasehold.WithSignals()); err != nil {
		log.Fatal(err)
	}
}
