package leasehold

import "github.com/leasehold/leasehold/lease"

// LeaseState says in one word what is happening to a lease, as `leasehold
// leases` prints it: "ended" (its shard was read to its end), "unowned"
// (any worker may take it), "handoff→<worker>" (its owner is handing it to
// that worker after its in-flight batch) or "active".
func LeaseState(l lease.Lease) string {
	switch {
	case l.Ended():
		return "ended"
	case l.Owner == "":
		return "unowned"
	case l.HandoffTo != "":
		return "handoff→" + l.HandoffTo
	}
	return "active"
}
