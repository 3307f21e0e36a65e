#!/usr/bin/env bash
# Runs every test on a local stack that this script starts and always stops.
# Used by `make test` and CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

go build -o bin/leasehold ./cmd/leasehold
started=0
cleanup() {
  if [ "$started" = 1 ]; then
    ./bin/leasehold dev down || true
  fi
}
trap cleanup EXIT INT TERM

echo "== starting the local stack"
./bin/leasehold dev up --with elasticsearch # the search-backend suite runs against both clusters
started=1
./bin/leasehold dev status

echo "== browser test dependencies"
bash scripts/browser-deps.sh
export LEASEHOLD_TEST_REQUIRE_BROWSER=1

echo "== go vet (the development build, the production build, the failpoint build)"
go vet ./...
go vet -tags production ./cmd/...
go vet -tags failpoint ./...

echo "== tests (unit and integration, -race)"
go test -race -count=1 -timeout 40m ./...
