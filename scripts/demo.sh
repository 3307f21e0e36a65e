#!/usr/bin/env bash
# make demo: start the local stack and show where everything runs. The demo
# workload (generated CloudFront logs and app events through the workers into
# OpenSearch, S3 and DynamoDB) grows with the pipeline; today it starts the
# stack and prints how to run workers on it.
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/leasehold ./cmd/leasehold
./bin/leasehold dev up
./bin/leasehold dev status
cat <<'MSG'

The local stack is running on 127.0.0.1. Next:

  eval "$(bin/leasehold dev env)"                      # point the AWS SDK at it
  bin/leasehold worker --worker.file-sink /tmp/w1.ndjson   # run workers (needs a stream)
  bin/leasehold leases                                 # the lease table
  bin/leasehold dev down                               # stop everything

See README.md and docs/LEASES.md.
MSG
