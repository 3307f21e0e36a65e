package appevent_test

import (
	"errors"
	"fmt"

	"github.com/leasehold/leasehold/appevent"
)

func ExampleParse() {
	ev, err := appevent.Parse([]byte(`{"event_id":"e-1","event_type":"share","occurred_at":"2024-05-01T12:00:00+02:00","asset_id":"a-9","tenant_id":"acme"}`))
	fmt.Println(ev.EventID, ev.EventType, ev.EventTime, ev.AssetID, ev.Tenant, err)

	_, err = appevent.Parse([]byte(`{"event_id":"e 2","event_type":"click","asset_id":7}`))
	var ve *appevent.ValidationError
	if errors.As(err, &ve) {
		for _, p := range ve.Problems {
			fmt.Printf("%s: %s\n", p.Field, p.Message)
		}
	}
	// Output:
	// e-1 share 2024-05-01 10:00:00 +0000 UTC a-9 acme <nil>
	// event_id: must be visible ASCII characters (no spaces), found ' ' at byte 1
	// event_type: "click" is not one of view, download, share, convert, permission_change
	// occurred_at: is required
	// asset_id: must be a string, got a number
	// tenant_id: is required
}
