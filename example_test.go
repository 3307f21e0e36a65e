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
	cfg, err := leasehold.LoadConfig("leasehold.yaml")
	if err == nil {
		// Run returns after SIGINT or SIGTERM, once it has checkpointed and released its leases.
		err = leasehold.Run(context.Background(), cfg, leasehold.WithProcessor("tag_campaign", tagCampaign), leasehold.WithSignals())
	}
	if err != nil {
		log.Fatal(err)
	}
}
