# llm-runtime — make build, make test, make check.

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
FUZZTIME ?= 10s

.PHONY: build test check fuzz clean

## build: the static binary ./llm-runtime
build:
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o llm-runtime ./cmd/llm-runtime

## test: the whole suite under the race detector, then a short fuzz run of the parser
test:
	go test -race -count=1 ./...
	go test -run='^$$' -fuzz=FuzzParser -fuzztime=$(FUZZTIME) -fuzzminimizetime=1s ./parser

## check: vet, formatting, and a tidy go.mod
check:
	go vet ./...
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go mod tidy -diff

## fuzz: a longer fuzz run (FUZZTIME=10m make fuzz)
fuzz:
	go test -run='^$$' -fuzz=FuzzParser -fuzztime=$(FUZZTIME) -fuzzminimizetime=1s ./parser

clean:
	rm -f llm-runtime
