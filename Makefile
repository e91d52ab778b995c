# azurelinux-probe: `make run` serves this host's facts on the default
# address with the embedded default configuration; `make test` runs every
# test (installing the tools they need when missing).

GO        ?= go
VERSION   ?= $(shell cat VERSION)
REVISION  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
BRANCH    ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
BUILDDATE ?= $(shell date -u +%Y%m%d-%H:%M:%S)
VERSION_PKG := github.com/prometheus/common/version
LDFLAGS := -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Revision=$(REVISION) \
	-X $(VERSION_PKG).Branch=$(BRANCH) -X $(VERSION_PKG).BuildDate=$(BUILDDATE)
BIN := build/azurelinux-probe
ARGS ?=

# Tools the tests need: command (or file):debian-package:azure-linux-package.
# debootstrap, systemd-nspawn and nsenter boot the real systemd the systemd
# collector's live test reads; dbus-daemon hosts its fault tests; rpm makes
# a real rpm database for the userland collector's test.
TEST_TOOLS := promtool:prometheus:golang-github-prometheus prometheus:prometheus:golang-github-prometheus \
	debootstrap:debootstrap:debootstrap systemd-nspawn:systemd-container:systemd-container \
	nsenter:util-linux:util-linux dbus-daemon:dbus:dbus-daemon rpm:rpm:rpm
# setpriv drops CAP_SYSLOG for the kmsg collector's permission test.
TEST_TOOLS += setpriv:util-linux:util-linux
# The packaging tests (scripts/package-test.sh).
TEST_TOOLS += rpmbuild:rpm:rpm-build rpm2cpio:rpm2cpio:rpm cpio:cpio:cpio \
	createrepo_c:createrepo-c:createrepo_c dnf:dnf:dnf5 rpmlint:rpmlint:rpmlint \
	curl:curl:curl python3:python3:python3

# Packaging: `make rpm repo` builds the RPM and SRPM from the tarballs into
# dist/ and makes dist/ a dnf repository with dist/azurelinux-probe.repo.
NAME := azurelinux-probe
DIST := dist
REPO_URL ?= file://$(CURDIR)/$(DIST)
RPMBUILD_FLAGS ?=
# Without an rpm database (Debian) rpmbuild cannot check BuildRequires; the
# spec's own fallbacks stand in for go-rpm-macros and systemd-rpm-macros.
RPM_NODEPS = $(shell rpm -q rpm >/dev/null 2>&1 || echo --nodeps)
RPMBUILD_DEFS = --define "_topdir $(CURDIR)/build/rpmbuild" --define "_sourcedir $(CURDIR)/$(DIST)" \
	--define "_rpmdir $(CURDIR)/$(DIST)" --define "_srcrpmdir $(CURDIR)/$(DIST)"

# What `make generate` needs to rebuild the eBPF canary (bpf/). Building the
# probe does not: the generated object and Go code are committed. Outside CI
# the test comparing them with a regeneration runs only when clang is there.
BPF_TOOLS := clang:clang:clang llvm-strip:llvm:llvm /usr/include/bpf/bpf_helpers.h:libbpf-dev:libbpf-devel

FUZZTIME ?= 30s

.PHONY: all build run test vet unit race promtool-check tools fmt-check generate bench fuzz clean \
	tarball rpm repo package-test

all: build

# A static binary (no libc mapped: about 1.5 MB less resident memory); the
# probe needs no cgo.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/azurelinux-probe

run: build
	./$(BIN) $(ARGS)

tools:
	scripts/need-tools.sh $(TEST_TOOLS) $(if $(filter true,$(CI)),$(BPF_TOOLS))

# Rebuild bpf/canary_bpf{el,eb}.{o,go} from bpf/canary.c with bpf2go.
generate:
	scripts/need-tools.sh $(BPF_TOOLS)
	$(GO) generate ./bpf/...

test: tools fmt-check vet unit race promtool-check package-test

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi

vet:
	$(GO) vet ./...

# Unit, golden end-to-end, live (this host's kernel, a real systemd booted in
# a container) and serve tests; in bpf/, the check that the committed canary
# object is what its source compiles to. The 30-second concurrency test runs
# in full under the race detector below.
unit:
	scripts/with-kernel-fs.sh scripts/with-systemd-container.sh $(GO) test -count=1 -short ./...

# The agent (scheduler, cache, HTTP) under the race detector, with 64
# concurrent scrapers for 30 s against continuously refreshing collectors.
race:
	$(GO) test -count=1 -race ./agent/...

# The golden output of every fixture tree (all collectors) and the facts of
# this host must pass promtool's metric lint; the served /metrics is checked
# by the serve end-to-end test.
promtool-check: build
	@set -e; for f in collectors/testdata/golden/*.prom; do \
		echo "promtool check metrics $$f"; promtool check metrics < $$f; \
	done; \
	./$(BIN) facts --format=prometheus --log.level=error > build/facts.prom || true; \
	echo "promtool check metrics (this host)"; promtool check metrics < build/facts.prom

# Source tarball (the working tree) and vendored-modules tarball for the spec.
tarball:
	scripts/tarball.sh $(DIST)

rpm: tarball
	rpmbuild -ba $(RPM_NODEPS) $(RPMBUILD_DEFS) $(RPMBUILD_FLAGS) $(NAME).spec

repo: rpm
	createrepo_c --quiet --update $(DIST)
	sed 's|@REPO_URL@|$(REPO_URL)|' packaging/$(NAME).repo > $(DIST)/$(NAME).repo
	@echo "repository: $(DIST)/ ($(DIST)/$(NAME).repo, baseurl $(REPO_URL))"

# rpmlint, unit exposure, dnf install/upgrade/remove, the unit under a real
# systemd: on the RPM built once by `rpm` (root only).
package-test: rpm repo
	scripts/package-test.sh

# Side-by-side benchmark against node_exporter and a static server;
# writes docs/benchmarks.md.
bench:
	scripts/bench.sh

# Every fuzz target of every package for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
		for fz in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | cut -d' ' -f2); do \
			echo "fuzz $$pkg $$fz ($(FUZZTIME))"; \
			$(GO) test -run='^$$' -fuzz="^$$fz$$" -fuzztime=$(FUZZTIME) $$pkg; \
		done; \
	done

clean:
	rm -rf build dist
