# leasehold — make targets. `make test` is what CI runs (.ci/run): it builds the
# binary, starts the local stack from nothing (npm packages, the OpenSearch zip
# from Maven Central, Go modules), runs unit and integration tests with -race,
# and stops the stack again, also when a test fails.

GO      ?= go
BIN     := bin/leasehold
PKGS    := ./...

.PHONY: build test test-unit test-integration lint demo bench bench-explorer bench-reads kclref screenshots stack-up stack-down stack-status clean

build:
	$(GO) build -o $(BIN) ./cmd/leasehold

## test: everything, on a local stack started and stopped for the run
test:
	bash scripts/test.sh

## test-unit: fast tests, no services needed
test-unit:
	$(GO) test -race -short -count=1 $(PKGS)

## test-integration: all tests; needs the local stack (make stack-up)
test-integration:
	$(GO) test -race -count=1 -timeout 30m $(PKGS)

lint:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)

## demo: start the local stack and show where everything runs
demo: build
	bash scripts/demo.sh

## bench: every benchmark scenario on the local stack; rewrites docs/BENCHMARKS.md
bench:
	bash scripts/bench.sh

## bench-explorer: page-ready time and p95 per explorer API call (see docs/BENCHMARKS.md)
bench-explorer: build
	bash scripts/bench-explorer.sh

## kclref: the reference consumer (vmware-go-kcl-v2, its own module) that bench-reads compares with
kclref:
	$(GO) -C bench/kclref build -o $(CURDIR)/bin/kclref .

## bench-reads: leasehold's read path against vmware-go-kcl-v2, 3 runs each, alternating, and a
## backlog's catch-up (about 40 minutes; RUNS, BACKLOG; see docs/BENCHMARKS.md)
bench-reads:
	bash scripts/bench-reads.sh

## screenshots: rewrite the explorer's screenshots in docs/ (needs the stack)
screenshots:
	bash scripts/browser-deps.sh
	LEASEHOLD_TEST_SCREENSHOTS=$(CURDIR)/docs LEASEHOLD_TEST_REQUIRE_BROWSER=1 $(GO) test -count=1 -run TestBrowser ./explorer/

stack-up: build
	$(BIN) dev up

stack-down: build
	$(BIN) dev down

stack-status: build
	$(BIN) dev status

clean:
	rm -rf bin
