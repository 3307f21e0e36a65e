package event_test

import (
	"fmt"
	"time"

	"github.com/leasehold/leasehold/event"
)

func ExampleEvent_AppendJSON() {
	e := event.Event{
		EventTime: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC),
		EventType: event.TypeView,
		EventID:   "id-1",
		Source:    event.SourceCloudFront,
		URI:       "/v/a.mp4",
		Status:    200,
		UserAgent: "tab\there",
	}
	buf := make([]byte, 0, 512) // reuse across events to avoid allocation
	buf = e.AppendJSON(buf)
	fmt.Println(string(buf))
	// Output:
	// {"event_time":"2024-05-01T10:00:00Z","event_type":"view","event_id":"id-1","source":"cloudfront","bot":false,"user_agent":"tab\there","bytes":0,"status":200,"uri":"/v/a.mp4"}
}
