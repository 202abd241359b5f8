# Veil. `make run` starts the whole service; `make test` runs every test,
# installing what the tests need first.

GO ?= go
DATA ?= ./veil-data
# What `veil --version` prints; a build without it shows the module version
# Go stamped in, or "dev".
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)

.PHONY: run build test test-deps test-short fuzz geoip bench clean

run: build
	./bin/veil serve --data $(DATA)

build:
	$(GO) build -ldflags "-X veil/internal/cli.Version=$(or $(VERSION),dev)" -o bin/veil ./cmd/veil

# The whole suite: Debian packages the tests need, a throwaway PostgreSQL,
# root-only namespace tests when run as root, browser tests with chromium.
test: test-deps
	./scripts/test.sh

test-deps:
	./scripts/test-deps.sh

# Unit tests only: no packages installed, no PostgreSQL, no root.
test-short:
	$(GO) test -short ./...

geoip:
	./scripts/geoip.sh $(DATA)

clean:
	rm -rf bin
