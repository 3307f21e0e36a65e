// Package leasehold runs a leasehold worker from a program of your own: one
// member of a fleet that shares a Kinesis stream's shards through a
// DynamoDB lease table and runs every record through a pipeline of
// processors into sinks. It is the same recipe the leasehold binary's
// `worker` command runs; cmd/leasehold is a thin user of this package.
//
// A program adds its own processor and sink types next to the built-in
// ones and runs a worker from a YAML file (RunFile), or from a Config it
// loaded (LoadConfig: defaults, a YAML file, LEASEHOLD_* variables) or
// built (DefaultConfig) (Run):
//
//	err := leasehold.RunFile(ctx, "leasehold.yaml", leasehold.WithProcessor("tag_campaign", tag), leasehold.WithSignals())
//
// Run takes AWS credentials, region and endpoints from the AWS SDK's
// default chain (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL_KINESIS, ...)
// unless WithAWSConfig supplies a configuration, serves /metrics, /healthz
// and /readyz on worker.metrics_addr, and on SIGINT or SIGTERM (with
// WithSignals) or when its context ends stops reading, flushes the sinks,
// checkpoints and releases its leases.
//
// # Why a package at the module root
//
// The entry point is what an embedding program imports first, so it has
// the module's name: `leasehold.Run`, `leasehold.Config`. The packages it
// wires stay where they are and remain public for programs that need
// more: processors (the Processor and Sink contracts, the registry),
// worker and lease (the consumer and the lease table), checkpoint.
//
// # The configuration type
//
// Config is the configuration of the leasehold binary: the same keys in
// YAML files, LEASEHOLD_* variables and flags (docs/CONFIG.md). It is
// defined in an internal package, which also parses and validates it for
// the binary's other commands; this package re-exports it and its
// sections as type aliases, so a program names them (leasehold.Config,
// leasehold.LeaseConfig, ...) and there is one definition, one set of
// defaults and one Validate. The sections a worker reads are Log, Stream,
// Lease, Worker and Pipeline; the others configure other commands and are
// ignored here.
//
// # Errors
//
// Every error New and LoadConfig return for a mistake in the
// configuration, the pipeline section or an option is a *ConfigError
// (the binary exits with status 2 for it). Other errors mean the work
// failed.
package leasehold
