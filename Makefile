# loopmatch — the two commands that matter on a fresh machine:
#   make demo   ingest the shipped demo library into the embedded store and serve it
#   make test   everything CI runs (installs what it needs first)
SHELL := /bin/bash
ROOT := $(CURDIR)
FUZZTIME ?= 60s

.PHONY: all bootstrap build test demo models fuzz bench vet fmt clean

all: build

bootstrap:
	scripts/bootstrap.sh

build: bootstrap
	go build -o bin/loopmatch ./cmd/loopmatch

test:
	scripts/test.sh

demo: build
	bin/loopmatch demo

models:
	scripts/bootstrap.sh --train
	train/make_models.sh

fuzz: bootstrap
	scripts/fuzz.sh $(FUZZTIME)

bench: bootstrap
	go test -run '^$$' -bench . -benchmem ./...

vet:
	go vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
