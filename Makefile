# azurelinux-probe: `make run` serves this host's facts on the default
# address with the embedded default configuration; `make test` runs every
# test (installing the tools they need when missing).

GO        ?= go
VERSION   ?= $(shell cat VERSION)
REVISION  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
BRANCH    ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
# Reproducible builds (docs/packaging.md): the build date is the last
# commit's, not the clock's, and the tarballs and rpmbuild take the same.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH
BUILDDATE ?= $(shell date -u -d @$(SOURCE_DATE_EPOCH) +%Y%m%d-%H:%M:%S)
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
# The boot collector's real-input tests: Debian's signed kernel package
# (scripts/debian-kernel.sh, apt-get download) taken apart with dpkg-deb,
# signatures stripped with objcopy, keys from openssl, zstd and xz
# compression, depmod and dracut for a real dracut image.
TEST_TOOLS += dpkg-deb:dpkg:dpkg objcopy:binutils:binutils openssl:openssl:openssl zstd:zstd:zstd \
	xz:xz-utils:xz depmod:kmod:kmod dracut:dracut:dracut
# setpriv drops CAP_SYSLOG for the kmsg collector's permission test.
TEST_TOOLS += setpriv:util-linux:util-linux
# The packaging tests (scripts/package-test.sh).
TEST_TOOLS += rpmbuild:rpm:rpm-build rpm2cpio:rpm2cpio:rpm cpio:cpio:cpio \
	createrepo_c:createrepo-c:createrepo_c dnf:dnf:dnf5 rpmlint:rpmlint:rpmlint \
	curl:curl:curl python3:python3:python3
# Signing (make repo) and its test: rpmsign, rpmkeys, gpg and gpgconf.
TEST_TOOLS += rpmsign:rpm:rpm-sign rpmkeys:rpm:rpm gpg:gnupg:gnupg2 gpgconf:gpgconf:gnupg2

# arm64-check cross-builds for Azure's Cobalt VMs and runs the arm64 tree
# under qemu-user.
TEST_TOOLS += qemu-aarch64-static:qemu-user-static:qemu-user-static file:file:file

# The status page and the fleet report are opened in headless Chromium
# (cmd/azurelinux-probe/fleet_e2e_test.go).
TEST_TOOLS += chromium:chromium:chromium

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

# Prometheus 3 and its promtool for the end-to-end and promtool tests, beside
# Debian's 2.42: built once from the Go module proxy (about 4 minutes) into a
# cache directory that later runs reuse. The tests read PROMETHEUS3_DIR.
PROMETHEUS3_VERSION ?= v0.316.0
PROMETHEUS3_DIR ?= /var/cache/azurelinux-probe-test/prometheus3/bin
export PROMETHEUS3_DIR

.PHONY: all build run test vet unit race promtool-check arm64-check tools prometheus3 fmt-check generate bench fuzz clean demo screenshots \
	tarball rpm repo package-test package-test-key

all: build

# A static binary (no libc mapped: about 1.5 MB less resident memory); the
# probe needs no cgo.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS) -B gobuildid" -o $(BIN) ./cmd/azurelinux-probe

run: build
	./$(BIN) $(ARGS)

tools: prometheus3
	scripts/need-tools.sh $(TEST_TOOLS) $(if $(filter true,$(CI)),$(BPF_TOOLS))

prometheus3:
	@for t in prometheus promtool; do \
		if [ ! -x $(PROMETHEUS3_DIR)/$$t ]; then \
			echo "building $$t $(PROMETHEUS3_VERSION) into $(PROMETHEUS3_DIR)"; \
			mkdir -p $(PROMETHEUS3_DIR) && \
			GOBIN=$(PROMETHEUS3_DIR) $(GO) install github.com/prometheus/prometheus/cmd/$$t@$(PROMETHEUS3_VERSION) || exit 1; \
		fi; \
	done

# Rebuild bpf/canary_bpf{el,eb}.{o,go} from bpf/canary.c with bpf2go.
generate:
	scripts/need-tools.sh $(BPF_TOOLS)
	$(GO) generate ./bpf/...

test: tools fmt-check vet unit race promtool-check arm64-check package-test

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
# this host must pass the metric lint of promtool 2 and 3; the served
# /metrics is checked by the serve end-to-end test.
promtool-check: build prometheus3
	@set -e; ./$(BIN) facts --format=prometheus --log.level=error > build/facts.prom || true; \
	for pt in promtool $(PROMETHEUS3_DIR)/promtool; do \
		for f in collectors/testdata/golden/*.prom build/facts.prom; do \
			echo "$$pt check metrics $$f"; $$pt check metrics < $$f; \
		done; \
	done

# `facts` and `check` of the arm64 fixture tree by an arm64 build under
# qemu-user, against the tree's golden output and the amd64 build's verdicts.
arm64-check:
	scripts/arm64-check.sh

# Source tarball (the working tree) and vendored-modules tarball for the spec.
tarball:
	scripts/tarball.sh $(DIST)

rpm: tarball
	rpmbuild -ba $(RPM_NODEPS) $(RPMBUILD_DEFS) $(RPMBUILD_FLAGS) $(NAME).spec

# Signs every RPM and repodata/repomd.xml with GPG_KEY (a secret key of
# the gpg keyring, GNUPGHOME or ~/.gnupg), exports the public key and writes
# the repo file with gpgcheck=1, repo_gpgcheck=1, gpgkey= (scripts/repo.sh).
# Without GPG_KEY it fails, unless UNSIGNED=1 asks for an unsigned lab
# repository.
GPG_KEY ?=
UNSIGNED ?=
repo: rpm
	GPG_KEY='$(GPG_KEY)' UNSIGNED='$(UNSIGNED)' scripts/repo.sh $(DIST) $(REPO_URL)

# rpmlint, unit exposure, signed install and the refusals of tampered and
# unsigned packages, dnf upgrade/remove, a reproducible rebuild, the unit
# under a real systemd: on the RPM built once by `rpm` (root only), signed
# by `repo` with a throwaway key that `package-test-key` makes first.
PACKAGE_TEST_GNUPG := $(CURDIR)/build/package-test-gnupg
package-test: export GNUPGHOME = $(PACKAGE_TEST_GNUPG)
package-test: override GPG_KEY = package-test@azurelinux-probe.invalid
package-test: override UNSIGNED =
package-test: package-test-key rpm repo
	scripts/package-test.sh; rc=$$?; gpgconf --homedir $(PACKAGE_TEST_GNUPG) --kill gpg-agent; exit $$rc

package-test-key:
	scripts/test-signing-key.sh $(PACKAGE_TEST_GNUPG) >/dev/null

# Side-by-side benchmark against node_exporter and a static server;
# writes docs/benchmarks.md.
# Four probes on fixture trees (3.0, 4.0, 4.0 with an unbound GPU, bare
# metal) and a Prometheus scraping them, then the fleet report: see the
# addresses it prints. Ctrl-C stops it.
demo: build
	scripts/demo.sh $(BIN)

# The README's pictures: the fleet report and a probe's status page, as
# headless Chromium renders them in TestFleetReport.
screenshots:
	FLEET_SCREENSHOTS=$(CURDIR)/build/screenshots sh -c 'mkdir -p build/screenshots && $(GO) test ./cmd/azurelinux-probe -run "TestFleetReport/v3" -count=1' && \
		cp build/screenshots/report-v3.png docs/report.png && cp build/screenshots/status-v3.png docs/status.png

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
