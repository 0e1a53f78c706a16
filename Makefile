# sweetspot — common tasks. `make help` lists them.
GO       ?= go
# The Go release everything here builds with: govulncheck (make vulncheck)
# finds reachable standard-library vulnerabilities in go1.26.8. The go
# command fetches this release from the module proxy (golang.org/toolchain)
# on first use. Jaeger and the Temporal dev server are test servers, never
# shipped: they build with the machine's Go, so a build made once is reused.
export GOTOOLCHAIN ?= go1.26.10
BIN      := $(CURDIR)/.bin
PLUGINS  := $(CURDIR)/.sweetspot/plugins
FUZZRUNS ?= 5000x
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)

.PHONY: help build jaeger temporal chromium python-numpy python-helper onnxruntime fashion-mnist openblas test test-unit fuzz vet examples proto proto-tools bench bench-blas load clean quickstart vulncheck

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

# netgo,osusergo (sdk.BuildTags): a static binary, whose built-in stage
# processes start without the dynamic loader.
build: ## build the sweetspot binary into .bin/
	$(GO) build -tags netgo,osusergo -ldflags '$(LDFLAGS)' -o $(BIN)/sweetspot ./cmd/sweetspot

quickstart: ## run the quickstart pipeline
	$(GO) run ./cmd/sweetspot run examples/quickstart

vet: ## go vet and gofmt check (the blas-tagged files too: a C compiler, not OpenBLAS)
	$(GO) vet ./...
	$(GO) vet -tags blas ./plugins/internal/nn/...
	@out=$$(gofmt -l cmd internal pipeline plugins sdk examples tools/benchdoc); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

examples: ## build the third-party example plugins into .sweetspot/plugins/
	$(MAKE) -C examples/plugins/standardize build OUT=$(PLUGINS)/sweetspot-plugin-standardize

test: vet examples jaeger temporal chromium python-numpy python-helper python-torch onnxruntime test-unit fuzz vulncheck ## everything CI runs

test-unit: ## unit and integration tests with the race detector
	SWEETSPOT_TEST_STRICT=1 SWEETSPOT_PLUGIN_PATH=$(PLUGINS) $(GO) test -race -count=1 -timeout 25m ./...
	$(MAKE) -C examples/plugins/standardize test
	$(MAKE) -C examples/stage-template test testacc

fuzz: ## short fuzz runs of every parser of outside input (counts, not durations: see golang/go#75804)
	$(GO) test ./pipeline/config -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./pipeline/config -run '^$$' -fuzz '^FuzzVarFile$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./pipeline/config -run '^$$' -fuzz '^FuzzParseByteSize$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./pipeline/runstore -run '^$$' -fuzz '^FuzzReadJournal$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./pipeline/runstore -run '^$$' -fuzz '^FuzzCheckRunID$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./pipeline/report -run '^$$' -fuzz '^FuzzParseSpans$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./pipeline/report -run '^$$' -fuzz '^FuzzScalingCharts$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./pipeline/runstore -run '^$$' -fuzz '^FuzzChangeLog$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./plugins/dataset -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./plugins/dataset -run '^$$' -fuzz '^FuzzLoadColumnar$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./plugins/dataset -run '^$$' -fuzz '^FuzzLoadIDX$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./plugins/dataset -run '^$$' -fuzz '^FuzzTextParsers$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./plugins/dataset -run '^$$' -fuzz '^FuzzParseFloat$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./plugins/dataset -run '^$$' -fuzz '^FuzzSwarDecimal$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./sdk -run '^$$' -fuzz '^FuzzDecodeWireConfig$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./sdk/stagerpc -run '^$$' -fuzz '^FuzzInbox$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./sdk/stagehost -run '^$$' -fuzz '^FuzzRunResponses$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./sdk/stagehost -run '^$$' -fuzz '^FuzzDescribe$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./sdk/internal/wire -run '^$$' -fuzz '^FuzzRunRequests$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./plugins/internal/nn -run '^$$' -fuzz '^FuzzUnmarshalCompact$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./plugins/internal/prep -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./plugins/internal/modelfile -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./internal/ipcverify -run '^$$' -fuzz '^FuzzReaders$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./plugins/replay -run '^$$' -fuzz '^FuzzTable$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./plugins/modelchoice -run '^$$' -fuzz '^FuzzTableSpace$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./plugins/internal/tablefile -run '^$$' -fuzz '^FuzzRead$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./plugins/builtin -run '^$$' -fuzz '^FuzzLawTable$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./plugins/exec -run '^$$' -fuzz '^FuzzParseLine$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./plugins/exec -run '^$$' -fuzz '^FuzzChosenSettings$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./plugins/internal/prune -run '^$$' -fuzz '^FuzzHistory$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./plugins/internal/space -run '^$$' -fuzz '^FuzzCheck$$' -fuzztime $(FUZZRUNS)
	$(GO) test ./pipeline/lockfile -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZRUNS)

# Every benchmark of the main module and of the GoMLX peer (its own module,
# so GoMLX never enters go.mod); the raw output stays in .bin/bench/ and
# tools/benchdoc writes docs/benchmarks.md from it, even when a package
# fails (its figures then read "not measured"), before make reports the
# failure. -p 1: one package benchmarks at a time, so no two share the
# cores. Jaeger is for BenchmarkTracing; python-torch (Debian's PyTorch
# and Fashion-MNIST) for BenchmarkPruningPyTorch.
BENCHDIR   := $(BIN)/bench
BENCHFLAGS ?= -p 1 -run '^$$' -bench . -benchmem -timeout 3h

bench: SHELL := /bin/bash
bench: jaeger onnxruntime fashion-mnist python-torch ## benchmarks (speed and memory goals live here, not in tests) and docs/benchmarks.md
	@mkdir -p $(BENCHDIR)
	status=0; set -o pipefail; \
	SWEETSPOT_PLUGIN_PATH=$(PLUGINS) $(GO) test $(BENCHFLAGS) ./... 2>&1 | tee $(BENCHDIR)/main.txt || status=1; \
	(cd bench/gomlx && CGO_ENABLED=0 $(GO) test $(BENCHFLAGS) ./...) 2>&1 | tee $(BENCHDIR)/gomlx.txt || status=1; \
	cp /proc/loadavg $(BENCHDIR)/loadavg 2>/dev/null || : > $(BENCHDIR)/loadavg; \
	$(GO) run ./tools/benchdoc -command 'make bench' -loadavg $(BENCHDIR)/loadavg -o docs/benchmarks.md $(BENCHDIR)/main.txt $(BENCHDIR)/gomlx.txt || status=1; \
	exit $$status

# The optional OpenBLAS backend (the blas build tag) beside the pure-Go
# default: both builds' BenchmarkSgemm and BenchmarkTrain in turns, three
# times, into one output, whose medians benchdoc writes into
# docs/benchmarks.md's OpenBLAS section (make bench keeps that section).
BLASBENCH := -run '^$$' -bench '^(BenchmarkSgemm|BenchmarkTrain)$$' -benchmem -timeout 1h ./plugins/internal/nn

bench-blas: SHELL := /bin/bash
bench-blas: openblas ## the matrix product and the trainer, pure Go and OpenBLAS (-tags blas), into docs/benchmarks.md
	@mkdir -p $(BENCHDIR)
	set -o pipefail; for i in 1 2 3; do $(GO) test $(BLASBENCH) && $(GO) test -tags blas $(BLASBENCH) || exit 1; done 2>&1 | tee $(BENCHDIR)/blas.txt
	cp /proc/loadavg $(BENCHDIR)/blas-loadavg 2>/dev/null || : > $(BENCHDIR)/blas-loadavg
	$(GO) run ./tools/benchdoc -blas $(BENCHDIR)/blas.txt -loadavg $(BENCHDIR)/blas-loadavg -o docs/benchmarks.md

# The load runs alone: a 1 GiB dataset through three stages, 1000 trials,
# 50 stages and a 1 GiB CSV through the dataset stage, each reporting wall
# time and the peak RSS of host and plugins.
load: ## the load benchmarks only (BenchmarkLoad*; minutes, GBs of disk in the temp dir)
	$(GO) test -run '^$$' -bench '^BenchmarkLoad' -benchtime 1x -timeout 1h ./cmd/sweetspot

jaeger: $(BIN)/jaeger ## build Jaeger (for the tracing tests) into .bin/, once

$(BIN)/jaeger: tools/jaeger/go.mod tools/jaeger/go.sum
	cd tools/jaeger && GOTOOLCHAIN=local $(GO) build -o $(BIN)/jaeger github.com/jaegertracing/jaeger/cmd/jaeger

temporal: $(BIN)/temporal ## build the Temporal dev server (for the distributed-run tests) into .bin/, once

$(BIN)/temporal: tools/temporal/go.mod tools/temporal/go.sum
	cd tools/temporal && GOTOOLCHAIN=local $(GO) build -o $(BIN)/temporal github.com/temporalio/cli/cmd/temporal

# govulncheck and its database both come from the Go module proxy: the
# database is built from the OSV files of the golang.org/x/vulndb version
# that tools/govulncheck/go.mod pins (bump it there to refresh), once.
VULNDB := $(BIN)/vulndb

vulncheck: $(BIN)/govulncheck $(VULNDB)/index/db.json ## govulncheck ./... against the pinned Go vulnerability database
	$(BIN)/govulncheck -db file://$(VULNDB) ./...

$(BIN)/govulncheck $(BIN)/indexdb: tools/govulncheck/go.mod tools/govulncheck/go.sum
	cd tools/govulncheck && $(GO) build -o $(BIN)/ tool

$(VULNDB)/index/db.json: tools/govulncheck/go.mod $(BIN)/indexdb
	rm -rf $(VULNDB).tmp
	cd tools/govulncheck && $(GO) mod download golang.org/x/vulndb && \
		$(BIN)/indexdb -vulns "$$($(GO) list -m -f '{{.Dir}}' golang.org/x/vulndb)/data/osv" -out $(VULNDB).tmp
	rm -rf $(VULNDB) && mv $(VULNDB).tmp $(VULNDB)

# ONNX Runtime for Node.js is the judge of the ONNX exporter
# (plugins/internal/onnx): its tests and benchmarks run exported models in
# it and fail without it. npm installs the version the lock file pins, once;
# --ignore-scripts because the CPU binaries ship inside the package and its
# install script only fetches optional GPU libraries from a host CI cannot
# reach.
ORT := tools/onnxruntime/node_modules/onnxruntime-node/package.json

onnxruntime: $(ORT) ## install onnxruntime-node (for the ONNX export tests) into tools/onnxruntime/, once

$(ORT): tools/onnxruntime/package.json tools/onnxruntime/package-lock.json
	cd tools/onnxruntime && npm ci --ignore-scripts --no-audit --no-fund
	touch $@

# The blas build tag links Debian's OpenBLAS (plugins/internal/nn/openblas);
# the default build and CI do not need it.
openblas: ## install Debian's libopenblas-dev (for the blas build tag), once
	@if ! echo 'int main(void){return 0;}' | cc -x c - -lopenblas -o /dev/null 2>/dev/null; then \
		sudo=; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
		$$sudo apt-get update && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y libopenblas-dev; \
	fi

# The report's browser test opens the HTML in a real headless Chromium. It
# skips when the browser is absent, unless CI is set: there it fails.
chromium: ## install Debian's chromium (for the report's browser test), once
	@if [ ! -x /usr/bin/chromium ]; then \
		sudo=; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
		$$sudo apt-get update && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	fi

# examples/convnet's trainer runs on Debian's Python with numpy; its
# end-to-end test skips without numpy, unless CI is set: there it fails.
python-numpy: ## install Debian's python3-numpy (for the convnet example's trainer), once
	@if ! /usr/bin/python3 -c 'import numpy' 2>/dev/null; then \
		sudo=; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
		$$sudo apt-get update && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-numpy; \
	fi
	/usr/bin/python3 -m unittest discover -s examples/convnet -t examples/convnet

# The Python trainer helper (python/, standard library only) is tested on
# Debian's Python, the one the examples' trainers run on.
python-helper: ## the Python trainer helper's unit tests (python/sweetspot.py)
	/usr/bin/python3 -m unittest discover -s python -t python

# examples/pytorch trains with Debian's PyTorch (CPU) on Debian's
# Fashion-MNIST; its test fails, never skips, without them.
python-torch: python-helper ## install Debian's python3-torch and dataset-fashion-mnist (for examples/pytorch), once, and test its trainer
	@if ! /usr/bin/python3 -c 'import torch' 2>/dev/null || [ ! -d /usr/share/datasets/fashion-mnist ]; then \
		sudo=; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
		$$sudo apt-get update && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-torch dataset-fashion-mnist; \
	fi
	/usr/bin/python3 -m unittest discover -s examples/pytorch -t examples/pytorch

# BenchmarkScalingSweep (plugins/internal/fit) trains on Debian's
# Fashion-MNIST.
fashion-mnist: ## install Debian's dataset-fashion-mnist, once
	@if [ ! -d /usr/share/datasets/fashion-mnist ]; then \
		sudo=; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
		$$sudo apt-get update && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y dataset-fashion-mnist; \
	fi

proto-tools: $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc

$(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc: tools/proto/go.mod
	cd tools/proto && $(GO) build -o $(BIN)/ tool

proto: proto-tools ## regenerate sdk/stagepb from sdk/proto with pinned tools
	PATH=$(BIN):$$PATH $(BIN)/buf lint
	PATH=$(BIN):$$PATH $(BIN)/buf generate

clean: ## remove build outputs (not runs)
	rm -rf $(BIN) $(PLUGINS)
