# Veil. `make run` starts the whole service; `make test` runs every test,
# installing what the tests need first.

GO ?= go
DATA ?= ./veil-data
# What `veil --version` prints; a build without it shows the module version
# Go stamped in, or "dev".
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)

.PHONY: run build dist test test-deps test-short fuzz geoip bench clean

run: build
	./bin/veil serve --data $(DATA)

build:
	$(GO) build -ldflags "-X veil/internal/cli.Version=$(or $(VERSION),dev)" -o bin/veil ./cmd/veil

# Release files in dist/: veil for Linux (amd64, arm64), Windows (amd64)
# and macOS (arm64), SHA256SUMS, and the browser extension's zips with
# CONTROL_URL as their default service address.
DIST_TARGETS = linux/amd64 linux/arm64 windows/amd64 darwin/arm64
CONTROL_URL ?=
dist:
	rm -rf dist && mkdir -p dist
	for t in $(DIST_TARGETS); do \
		os=$${t%/*}; arch=$${t#*/}; ext=; [ $$os = windows ] && ext=.exe; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build \
			-ldflags "-s -w -X veil/internal/cli.Version=$(or $(VERSION),dev)" \
			-o dist/veil-$$os-$$arch$$ext ./cmd/veil || exit 1; \
	done
	$(GO) run ./scripts/packext -src extension -out dist -control "$(CONTROL_URL)"
	cd dist && sha256sum veil-* > SHA256SUMS

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
	rm -rf bin dist
