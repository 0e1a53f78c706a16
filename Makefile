# sweetspot — common tasks. `make help` lists them.
GO       ?= go
BIN      := $(CURDIR)/.bin
PLUGINS  := $(CURDIR)/.sweetspot/plugins
FUZZRUNS ?= 5000x
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)

.PHONY: help build jaeger temporal chromium test test-unit fuzz vet examples proto proto-tools bench clean quickstart

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build the sweetspot binary into .bin/
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/sweetspot ./cmd/sweetspot

quickstart: ## run the quickstart pipeline
	$(GO) run ./cmd/sweetspot run examples/quickstart

vet: ## go vet and gofmt check
	$(GO) vet ./...
	@out=$$(gofmt -l cmd internal pipeline plugins sdk examples); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

examples: ## build the third-party example plugins into .sweetspot/plugins/
	$(MAKE) -C examples/plugins/standardize build OUT=$(PLUGINS)/sweetspot-plugin-standardize

test: vet examples jaeger temporal chromium test-unit fuzz ## everything CI runs

test-unit: ## unit and integration tests with the race detector
	SWEETSPOT_PLUGIN_PATH=$(PLUGINS) $(GO) test -race -count=1 ./...
	$(MAKE) -C examples/plugins/standardize test
	$(MAKE) -C examples/stage-template test

fuzz: ## short fuzz runs of every parser of outside input (counts, not durations: see golang/go#75804)
	$(GO) test ./pipeline/config -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./plugins/dataset -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./plugins/dataset -run '^$$' -fuzz '^FuzzLoadColumnar$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./plugins/dataset -run '^$$' -fuzz '^FuzzLoadIDX$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./sdk -run '^$$' -fuzz '^FuzzDecodeWireConfig$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./plugins/internal/nn -run '^$$' -fuzz '^FuzzUnmarshalCompact$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./plugins/internal/prep -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./plugins/internal/ipcverify -run '^$$' -fuzz '^FuzzReaders$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./plugins/replay -run '^$$' -fuzz '^FuzzTable$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./plugins/exec -run '^$$' -fuzz '^FuzzParseLine$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./pipeline/install/lockfile -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZRUNS)

bench: ## benchmarks (speed and memory goals live here, not in tests)
	$(GO) test -run '^$$' -bench . -benchmem ./...

jaeger: $(BIN)/jaeger ## build Jaeger (for the tracing tests) into .bin/, once

$(BIN)/jaeger: tools/jaeger/go.mod tools/jaeger/go.sum
	cd tools/jaeger && $(GO) build -o $(BIN)/jaeger github.com/jaegertracing/jaeger/cmd/jaeger

temporal: $(BIN)/temporal ## build the Temporal dev server (for the distributed-run tests) into .bin/, once

$(BIN)/temporal: tools/temporal/go.mod tools/temporal/go.sum
	cd tools/temporal && $(GO) build -o $(BIN)/temporal github.com/temporalio/cli/cmd/temporal

# The report's browser test opens the HTML in a real headless Chromium. It
# skips when the browser is absent, unless CI is set: there it fails.
chromium: ## install Debian's chromium (for the report's browser test), once
	@if [ ! -x /usr/bin/chromium ]; then \
		sudo=; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
		$$sudo apt-get update && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	fi

proto-tools: $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc

$(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc: tools/proto/go.mod
	cd tools/proto && $(GO) build -o $(BIN)/ tool

proto: proto-tools ## regenerate sdk/stagepb from sdk/proto with pinned tools
	PATH=$(BIN):$$PATH $(BIN)/buf lint
	PATH=$(BIN):$$PATH $(BIN)/buf generate

clean: ## remove build outputs (not runs)
	rm -rf $(BIN) $(PLUGINS)
