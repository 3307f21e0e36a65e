package localrun_test

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/localrun"
	"github.com/leasehold/leasehold/processors/transform"
)

// A processor of your own, tried on local input before it runs in a worker:
// register it next to the built-ins and run a chain that uses it.
func Example() {
	reg := processors.NewRegistry()
	transform.Register(reg)
	reg.RegisterProcessor("tag_campaign", func(context.Context, processors.Options, processors.Deps) (processors.Processor, error) {
		return processors.ProcessorFunc(func(_ context.Context, batch []*processors.Message) ([]*processors.Message, error) {
			for _, m := range batch {
				if strings.Contains(m.Event.Query, "utm_campaign=") {
					m.Event.EventType = "campaign_" + m.Event.EventType
				}
			}
			return batch, nil
		}), nil
	})
	pipeline := mustYAML(`
processors:
  - type: parse
  - type: tag_campaign
`)
	in := "2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.10\tGET\td111111abcdef8.cloudfront.net\t/launch.mp4\t200\t-\tcurl/8.4.0\tutm_campaign=spring\n"
	sum, err := localrun.Run(context.Background(), localrun.Options{
		Stdin: strings.NewReader(in), Pipeline: pipeline, Registry: reg, Stdout: os.Stdout,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sum)
	// Output:
	// {"event_time":"2019-12-04T21:02:31Z","event_type":"campaign_view","event_id":"cf-7341625e60c5f30915c8f3ffaf04f5f6","source":"cloudfront","client_ip":"192.0.2.10","bot":false,"user_agent":"curl/8.4.0","bytes":392,"status":200,"method":"GET","uri":"/launch.mp4","query":"utm_campaign=spring","host":"d111111abcdef8.cloudfront.net","edge_location":"LAX1","source_record":{"stream":"local","shard_id":"stdin","sequence_number":"1","sub_sequence_number":0}}
	// pipeline run: 1 input, 1 read, 1 document, 0 filtered, 0 dead letters
}
