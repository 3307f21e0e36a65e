#!/usr/bin/env bash
# make bench-explorer: the explorer's page-view time and p95 per API call,
# on the demo's data (run `make demo` first) and on generated documents
# (EXPLORER_DOCS, default 10 million, in leasehold-bench-explorer-*; about
# 3 GB of disk). Prints Markdown for docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/leasehold ./cmd/leasehold
./bin/leasehold dev up --only opensearch
echo "## demo data (leasehold-demo-*)"
./bin/leasehold bench explorer --index 'leasehold-demo-*' --rounds "${EXPLORER_ROUNDS:-20}"
docs=${EXPLORER_DOCS:-10000000}
have=$(curl -sf "http://127.0.0.1:${LEASEHOLD_DEV_OPENSEARCH_PORT:-9200}/leasehold-bench-explorer-*/_count" | sed -n 's/.*"count":\([0-9]*\).*/\1/p' || true)
gen=0
if [ "${have:-0}" -lt "$docs" ]; then gen=$((docs - ${have:-0})); fi
echo "## generated data (leasehold-bench-explorer-*, $docs documents)"
./bin/leasehold bench explorer --generate "$gen" --rounds "${EXPLORER_ROUNDS:-20}"
