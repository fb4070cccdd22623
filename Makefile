# llm-runtime — make build, make test, make check.

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
FUZZTIME ?= 300000x

GUESTS := protect-secrets readonly redact

.PHONY: build test check fuzz guests clean k8s-binaries k8s-node-binaries test-k8s

## build: the static binaries ./llm-runtime and ./llm-runtime-client (the filter through
## llm-runtime serve alone, for a model loop; it runs ./llm-runtime for anything else)
build:
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o llm-runtime ./cmd/llm-runtime
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o llm-runtime-client ./cmd/llm-runtime-client

## test: the whole suite under the race detector, through tools/gotest: each package as it
## ends, what still runs every minute, every skipped test with its reason, and then a check
## that the suite left nothing of ours behind (Docker, the temporary directory, the user's
## directories); then short fuzz runs of the parser and of the text framing (a count, not a
## duration: a timed run can end in a spurious "context deadline exceeded")
TEST_TIMEOUT ?= 30m
TEST_PARALLEL ?= 4
test:
	go run ./tools/gotest -leftovers -- -race -count=1 -timeout=$(TEST_TIMEOUT) -parallel=$(TEST_PARALLEL) ./...
	go test -run='^$$' -fuzz=FuzzParser -fuzztime=$(FUZZTIME) -fuzzminimizetime=1s ./parser
	go test -run='^$$' -fuzz=FuzzTextFramingCannotBeForged -fuzztime=50000x -fuzzminimizetime=1s ./output
	go test -run='^$$' -fuzz=FuzzNumberedLinesCannotForgeFraming -fuzztime=50000x -fuzzminimizetime=1s ./output

## k8s-binaries: etcd, kube-apiserver, kubectl and agent-sandbox's controller and CRDs, built
## from the Go module proxy into ~/.cache/llm-runtime/k8s-bin (K8S_BIN), kept between runs
K8S_BIN ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/llm-runtime/k8s-bin
k8s-binaries:
	tools/k8s/build-binaries.sh $(K8S_BIN)

## k8s-node-binaries: what a real node needs (kubelet, kube-scheduler, containerd, crictl,
## kube-network-policies from the proxy; runc and the CNI plugins from Debian), into
## ~/.cache/llm-runtime/k8s-node-bin (K8S_NODE_BIN); the tests do not use it yet (issue 28)
K8S_NODE_BIN ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/llm-runtime/k8s-node-bin
k8s-node-binaries:
	tools/k8s/build-node-binaries.sh $(K8S_NODE_BIN)

## test-k8s: the tests that need a real Kubernetes API server (make test runs them too when
## the binaries are there, and skips them otherwise)
test-k8s: k8s-binaries
	LLM_RUNTIME_K8S_BIN=$(K8S_BIN) LLM_RUNTIME_REQUIRE_K8S=1 go test -count=1 -run 'K8s' ./...

## check: vet (the host and the guests), formatting, and a tidy go.mod
check:
	go vet ./...
	GOOS=wasip1 GOARCH=wasm go vet ./guests/... ./runtime/wasm/testdata/spin ./runtime/wasm/testdata/oom ./runtime/wasm/testdata/garbage ./runtime/wasm/testdata/nocontent ./runtime/wasm/testdata/abi1
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go mod tidy -diff

## guests: the example WebAssembly guests, guests/NAME/NAME.wasm
guests:
	@for g in $(GUESTS); do \
		echo "GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -ldflags=-s -o guests/$$g/$$g.wasm ./guests/$$g"; \
		GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -ldflags=-s -o guests/$$g/$$g.wasm ./guests/$$g || exit 1; \
	done

## fuzz: a longer fuzz run (FUZZTIME=10m make fuzz)
fuzz:
	go test -run='^$$' -fuzz=FuzzParser -fuzztime=$(FUZZTIME) -fuzzminimizetime=1s ./parser

clean:
	rm -f llm-runtime llm-runtime-client guests/*/*.wasm
