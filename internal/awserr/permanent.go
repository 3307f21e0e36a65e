package awserr

// Permanent reports, for the lease coordinator and the shard consumers
// (Kinesis and lease-table calls; writers use the classes), whether err
// will keep failing on retry until someone acts: Classify's CannotWrite or
// Reject (access denied, a KMS key disabled or missing, refused
// credentials, an invalid argument, another 4xx that is not throttling).
// Throttling, 5xx, timeouts, connection errors, an expired session token
// or iterator, and cancellations are not permanent. Conditional-check
// failures are decided by the caller before this.
func Permanent(err error) bool { return err != nil && Classify(err) != Retry }
