# banger build, install and test entry points. Run 'make help'.
SHELL := /bin/bash

PREFIX  ?= $(HOME)/.local
BINDIR  ?= $(PREFIX)/bin
LIBDIR  ?= $(PREFIX)/lib/banger
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
# A go new enough for go.mod: from PATH, else the one scripts/install-go
# (run by 'make deps') installed; looked up when used.
GO      ?= $(shell scripts/install-go --which 2>/dev/null || echo go)
LDFLAGS := -s -w -X banger/internal/version.Version=$(VERSION) -X banger/internal/version.Commit=$(COMMIT)
BIN     := build/bin
SOURCES := $(shell find cmd internal api client -name '*.go' -o -name '*.sql' -o -name '*.json' -o -name '*.yaml' 2>/dev/null) go.mod go.sum

.PHONY: help deps build install uninstall test test-e2e lint run clean

help: ## list targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

deps: ## install the host packages banger and its tests use (Debian/Ubuntu; uses sudo when not root)
	scripts/install-deps

build: $(BIN)/banger $(BIN)/bangerd $(BIN)/banger-vsock-agent ## build the three binaries into ./build/bin

# The first build on a cold Go build cache compiles every dependency
# (SQLite in pure Go is the longest): say so before the silence.
$(BIN)/banger: $(SOURCES)
	@echo "building banger, bangerd and the guest agent into $(BIN): a few minutes when the Go build cache is cold (the first build), seconds after"
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./cmd/banger

$(BIN)/bangerd: $(SOURCES)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./cmd/bangerd

# The guest agent runs inside arbitrary images: static, no libc.
$(BIN)/banger-vsock-agent: $(SOURCES)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./cmd/banger-vsock-agent

install: build ## install banger and bangerd to $(BINDIR), the agent to $(LIBDIR), a systemd user unit
	install -D -m 0755 $(BIN)/banger $(DESTDIR)$(BINDIR)/banger
	install -D -m 0755 $(BIN)/bangerd $(DESTDIR)$(BINDIR)/bangerd
	install -D -m 0755 $(BIN)/banger-vsock-agent $(DESTDIR)$(LIBDIR)/banger-vsock-agent
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" != 0 ]; then \
		install -D -m 0644 /dev/stdin $(HOME)/.config/systemd/user/bangerd.service < <(sed 's|@BINDIR@|$(BINDIR)|' scripts/bangerd.service.in); \
		systemctl --user daemon-reload 2>/dev/null || true; \
	fi
	@echo "installed banger to $(BINDIR)"
	@case ":$$PATH:" in *":$(BINDIR):"*) ;; *) echo "$(BINDIR) is not on your PATH; add it with: export PATH=\"$(BINDIR):\$$PATH\"" ;; esac

uninstall: ## remove what install installed
	rm -f $(BINDIR)/banger $(BINDIR)/bangerd $(LIBDIR)/banger-vsock-agent $(HOME)/.config/systemd/user/bangerd.service

run: deps install ## install everything, set up the host, then run banger's main job: 'banger vm run' on this checkout
	BINDIR=$(BINDIR) scripts/main-job

test: ## unit and in-process integration tests (no root, no VM), with the race detector; then the offline tests of the manual image scripts, scripts/install-go and scripts/main-job
	@echo "go test: compiling every package and its tests with the race detector (minutes on a cold Go build cache), then running them; a line per package as it ends, and what is still running"
	@$(GO) build -o $(BIN)/testfmt ./cmd/testfmt
	set -o pipefail; $(GO) test -json -race -count=1 ./... | $(BIN)/testfmt
	scripts/manual/test.sh
	scripts/test-install-go.sh
	scripts/test-main-job.sh

# The packages that hold e2e-tagged tests; the rest ran in 'make test'.
E2E_PKGS = $(sort $(dir $(shell grep -rl --include='*_test.go' '^//go:build.*e2e' cmd internal test)))

test-e2e: ## end-to-end tests that boot real guests under QEMU (slow; needs qemu-system-x86, busybox-static, apt sources)
	$(GO) test -tags e2e -count=1 -timeout 80m $(addprefix ./,$(E2E_PKGS))

lint: ## gofmt and go vet
	@out=$$("$$($(GO) env GOROOT)/bin/gofmt" -l cmd internal api client test) || exit 1; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean: ## remove build outputs
	rm -rf build

# Manual image flows (see docs/manual-images.md) -------------------------------
# Explicit helpers that write images under $(MANUAL_DIR); nothing else depends
# on them. ARGS is passed to the script; ALPINE_RELEASE pins the Alpine release.
# rootfs-void and rootfs-alpine need root (sudo make ...); the others do not.
MANUAL_DIR     ?= build/manual
ALPINE_RELEASE ?= 3.20.3
BANGER         ?= $(BIN)/banger
# The banger flows build banger first unless BANGER names another CLI.
MANUAL_BANGER_DEPS := $(if $(filter $(BIN)/banger,$(BANGER)),build)
MANUAL_ENV = MANUAL_DIR='$(abspath $(MANUAL_DIR))' BANGER='$(abspath $(BANGER))' ALPINE_RELEASE='$(ALPINE_RELEASE)'

.PHONY: rootfs void-kernel rootfs-void void-register alpine-kernel rootfs-alpine alpine-register

rootfs: $(MANUAL_BANGER_DEPS) ## manual: Docker devbox rootfs via banger image build (ARGS='--base-rootfs ... --kernel ...')
	$(MANUAL_ENV) scripts/manual/rootfs-docker.sh $(ARGS)

void-kernel: ## manual: stage Void's linux6.12 kernel in build/manual/void-kernel
	$(MANUAL_ENV) scripts/manual/void-kernel.sh $(ARGS)

rootfs-void: ## manual: Void rootfs + work-seed from the ROOTFS tarball (root)
	$(MANUAL_ENV) scripts/manual/rootfs-void.sh $(ARGS)

void-register: $(MANUAL_BANGER_DEPS) ## manual: register the Void files as image 'void'
	$(MANUAL_ENV) scripts/manual/register.sh void $(ARGS)

alpine-kernel: ## manual: stage Alpine's linux-virt kernel in build/manual/alpine-kernel
	$(MANUAL_ENV) scripts/manual/alpine-kernel.sh $(ARGS)

rootfs-alpine: ## manual: Alpine rootfs + work-seed from the minirootfs (root)
	$(MANUAL_ENV) scripts/manual/rootfs-alpine.sh $(ARGS)

alpine-register: $(MANUAL_BANGER_DEPS) ## manual: register the Alpine files as image 'alpine'
	$(MANUAL_ENV) scripts/manual/register.sh alpine $(ARGS)
# End of manual image flows -----------------------------------------------------
