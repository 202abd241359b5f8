# Veil. `make run` starts the whole service; `make test` runs every test,
# installing what the tests need first.

GO ?= go
DATA ?= ./veil-data

.PHONY: run build test test-deps test-short fuzz geoip bench clean

run: build
	./bin/veil serve --data $(DATA)

build:
	$(GO) build -o bin/veil ./cmd/veil

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
