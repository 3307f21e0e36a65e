#!/usr/bin/env bash
# make bench-explorer: the explorer's page-view time and p50/p95 per API
# call, on the demo's data (run `make demo` first) and on generated
# documents (EXPLORER_DOCS, default 10 million, in
# leasehold-bench-explorer-*; about 4.5 GB of disk with the rollups and,
# on a quiet 2-core machine with a 512 MB OpenSearch heap, about 4 minutes
# to generate and 20 to roll up), then page-ready in headless chromium,
# with the cluster's request cache kept and cleared before each load.
# Prints Markdown for docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/leasehold ./cmd/leasehold
./bin/leasehold dev up --only opensearch >&2
os="http://127.0.0.1:${LEASEHOLD_DEV_OPENSEARCH_PORT:-9200}"
rounds=${EXPLORER_ROUNDS:-20}

echo "### Demo data (leasehold-demo-*)"
./bin/leasehold bench explorer --index 'leasehold-demo-*' --rounds "$rounds"

docs=${EXPLORER_DOCS:-10000000}
have=$(curl -sf "$os/leasehold-bench-explorer-*/_count" | sed -n 's/.*"count":\([0-9]*\).*/\1/p' || true)
gen=0
if [ "${have:-0}" -lt "$docs" ]; then gen=$((docs - ${have:-0})); fi
echo
echo "### Generated data (leasehold-bench-explorer-*)"
./bin/leasehold bench explorer --generate "$gen" --rounds "$rounds"

# Page ready in a browser: the explorer as a process, the page in chromium.
bash scripts/browser-deps.sh >&2
tmp=$(mktemp -d)
token=$(./bin/leasehold explore token --name bench --admin | sed -n 's/^token: //p')
printf 'users:\n  - {name: bench, token_sha256: %s, admin: true}\n' "$(printf %s "$token" | sha256sum | cut -d' ' -f1)" > "$tmp/users.yaml"
for index in 'leasehold-demo-*' 'leasehold-bench-explorer-*'; do
  ./bin/leasehold explore --explore.listen 127.0.0.1:0 --explore.users-file "$tmp/users.yaml" --explore.opensearch-url "$os" \
    --explore.index "$index" --log.format json 2> "$tmp/explore.log" &
  pid=$!
  url=""
  for _ in $(seq 50); do
    url=$(sed -n 's/.*"url":"\([^"]*\)".*/\1/p' "$tmp/explore.log" | head -1)
    [ -n "$url" ] && break
    sleep 0.2
  done
  echo
  echo "$index: $(cd explorer/browsertest && node pageready.mjs "${url%/}" "$token" "${EXPLORER_PAGE_ROUNDS:-12}")"
  echo "$index, cold: $(cd explorer/browsertest && PAGEREADY_CLEAR="$os/_cache/clear?request=true" node pageready.mjs "${url%/}" "$token" "${EXPLORER_PAGE_ROUNDS:-12}")"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
rm -rf "$tmp"
