# diditflow — `make run` starts everything on embedded defaults, `make test`
# runs every test. Both build the pinned Temporal CLI into ./bin first.

TEMPORAL_CLI_VERSION := v1.5.1
STATICCHECK          := honnef.co/go/tools/cmd/staticcheck@v0.8.2
WORKFLOWCHECK        := go.temporal.io/sdk/contrib/tools/workflowcheck@v0.6.0
BIN                  := $(CURDIR)/bin
TEMPORAL             := $(BIN)/temporal
TEMPORAL_STAMP       := $(BIN)/.temporal-$(TEMPORAL_CLI_VERSION)
# The real multi-service server for make cluster, and the SQL tool that
# embeds its schemas; v1.32.0 declares this machine's Go (v1.32.2 needs a newer one).
TEMPORAL_SERVER_VERSION := v1.32.0
CLUSTER_BIN          := $(BIN)/cluster-$(TEMPORAL_SERVER_VERSION)
CLUSTER_STAMP        := $(CLUSTER_BIN)/.built

export TEMPORAL_CLI := $(TEMPORAL)

.PHONY: test vet build run chaos bench bench-reconcile clean-bin cluster-bin cluster test-cluster

## test: gofmt, go vet, staticcheck, workflowcheck (Temporal's determinism analyzer on workflows/, kyc/ and examples/), then every test (unit, fuzz seed corpora, integration against the dev server)
# -timeout: the e2e package alone takes 6-8 minutes on 2 cores, near go test's 10-minute default.
test: $(TEMPORAL_STAMP) vet
	go test -race -count=1 -timeout 30m ./...

vet:
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	go vet ./...
	go run $(STATICCHECK) ./...
	go run $(WORKFLOWCHECK) ./workflows/... ./kyc/... ./examples/...

build:
	go build -o $(BIN)/ ./starter ./worker

## bin/temporal: the Temporal CLI (dev server + UI) at a pinned version, built
## from source with the Go toolchain: nothing is downloaded but Go modules.
$(TEMPORAL_STAMP):
	@mkdir -p $(BIN)
	@echo "building temporal CLI $(TEMPORAL_CLI_VERSION) into $(BIN) (a few minutes the first time)"
	GOBIN=$(BIN) go install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION)
	@touch $@

bin/temporal: $(TEMPORAL_STAMP)

## cluster-bin: Temporal's server and SQL tool at a pinned version, into bin/ (about 8 minutes the first time)
$(CLUSTER_STAMP):
	@mkdir -p $(CLUSTER_BIN)
	@echo "building temporal server and sql tool $(TEMPORAL_SERVER_VERSION) into $(CLUSTER_BIN) (about 8 minutes the first time)"
	GOBIN=$(CLUSTER_BIN) go install go.temporal.io/server/cmd/server@$(TEMPORAL_SERVER_VERSION) go.temporal.io/server/cmd/tools/sql@$(TEMPORAL_SERVER_VERSION)
	@touch $@

cluster-bin: $(CLUSTER_STAMP)

## cluster: Temporal's four services on PostgreSQL, two workers and two starters (see docs/CLUSTER.md); Ctrl-C stops it
cluster: $(TEMPORAL_STAMP) $(CLUSTER_STAMP)
	go build -o $(BIN)/ ./cmd/cluster
	CLUSTER_SERVER_BIN=$(CLUSTER_BIN) exec $(BIN)/cluster

## test-cluster: make cluster's stack, sessions through both starters, then the e2e suite against its frontend (not part of make test)
test-cluster: $(TEMPORAL_STAMP) $(CLUSTER_STAMP)
	go build -o $(BIN)/ ./cmd/cluster
	CLUSTER_SERVER_BIN=$(CLUSTER_BIN) ./scripts/test-cluster.sh

clean-bin:
	rm -rf $(BIN)

## run: Temporal dev server (state in .data/), worker and starter, logs prefixed
run: $(TEMPORAL_STAMP)
	./scripts/run.sh

## chaos: the full fault-injection run and its figures table (several minutes)
chaos: $(TEMPORAL_STAMP)
	go run ./cmd/chaos

## bench: the webhook path against raw SignalWithStart, forged-request rate, end to end (writes docs/BENCHMARKS.md)
bench: $(TEMPORAL_STAMP)
	go run ./cmd/bench -write

## bench-reconcile: one reconcile run drains a 10,002-delivery backlog from the fake Didit: the worker's RSS growth, the run's history events and Didit calls (about ten minutes; figures in docs/BENCHMARKS.md)
bench-reconcile: $(TEMPORAL_STAMP)
	go test -run '^$$' -bench BenchmarkReconcileBacklog -benchtime 1x -timeout 30m ./internal/harness/e2e/
