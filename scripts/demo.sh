#!/usr/bin/env bash
# make demo: start the local stack and run the whole system on a generated
# media-library workload (leasehold demo). About a minute the first time,
# seconds on a second run.
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/leasehold ./cmd/leasehold
./bin/leasehold dev up
./bin/leasehold demo "$@"
