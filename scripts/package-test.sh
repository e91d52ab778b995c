#!/usr/bin/env bash
# package-test.sh [STEP...]
#
# Tests the RPM that `make rpm repo` left in dist/ (make package-test builds
# it first; it is built once per run). Steps, all by default:
#   lint       rpmlint on the spec, the signed RPM and SRPM: no error, and no
#              warning but the ones docs/packaging.md documents;
#              bundled(golang(...)) Provides = the binary's modules, the
#              SBOM schema-valid and complete
#   unit       systemd-analyze security --offline=true (exposure <= 2.5) and
#              the hardening directives the issue requires
#   install    the signed dist/ repository through the repo file make repo
#              wrote (gpgcheck=1, repo_gpgcheck=1), key imported: dnf
#              --installroot into an empty root (base dependencies from a
#              test-only RPM): files, modes, owners, user, rpm -V, the
#              installed binary's facts
#   signing    signatures verify; dnf refuses a changed RPM (twice), an
#              unsigned RPM and a changed repomd.xml, with its own errors
#   repro      a second build of the tarball: same binary, same file list
#   upgrade    edit the config, upgrade to a rebuilt N+1 through dnf: edits
#              survive, .rpmnew where the package's default changed
#   remove     dnf remove: binary and unit gone, edited config as .rpmsave
#   container  the unit under a real systemd (Debian 12, systemd-nspawn):
#              preset, enable --now, notify, watchdog, user, capabilities,
#              sandbox, every collector that works as root works in the unit
# Root only; make package-test supplies the throwaway signing key
# (GNUPGHOME) that signed dist/. Prints each step's time.
set -euo pipefail
cd "$(dirname "$0")/.."

NAME=azurelinux-probe
VERSION=$(cat VERSION)
DIST=${DIST:-dist}
MAX_EXPOSURE=2.5
# rpmlint warnings that are kept on purpose (docs/packaging.md says why).
KEPT_WARNINGS='no-manual-page-for-binary|invalid-url Source1: |files-duplicate /usr/share/licenses/azurelinux-probe/|cross-directory-hard-link /usr/share/licenses/azurelinux-probe/vendor/'
SC=scripts/systemd-container.sh

die() { echo "package-test: FAIL: $*" >&2; exit 1; }
ok() { echo "  ok: $*"; }
[ "$(id -u)" -eq 0 ] || die "must run as root (dnf --installroot scriptlets, systemd-nspawn)"

ARCH=$(rpm --eval '%{_arch}')
RPM=$(ls -t "$DIST/$ARCH/$NAME-$VERSION"-*."$ARCH".rpm 2>/dev/null | head -1)
SRPM=$(ls -t "$DIST/$NAME-$VERSION"-*.src.rpm 2>/dev/null | head -1)
[ -n "$RPM" ] && [ -n "$SRPM" ] || die "no $NAME-$VERSION RPM in $DIST (run make rpm repo)"
RPM=$(realpath "$RPM")
SRPM=$(realpath "$SRPM")
# Debian's rpm has no database to satisfy BuildRequires (same as the Makefile).
NODEPS=$(rpm -q rpm >/dev/null 2>&1 || echo --nodeps)

work=$(mktemp -d /tmp/$NAME-pkgtest.XXXXXX)
ct_pid="" ct_mount=""
cleanup() {
	if [ -n "$ct_pid" ]; then "$SC" stop "$ct_pid" || true; fi
	if [ -n "$ct_mount" ]; then umount "$ct_mount" || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

# assert_eq WHAT GOT WANT
assert_eq() {
	[ "$2" = "$3" ] || die "$1: got '$2', want '$3'"
	ok "$1 = $3"
}
# assert_stat PATH MODE OWNER:GROUP (numeric mode as stat %a, names resolved in ROOT)
assert_stat() {
	local path=$1 mode=$2 owner=$3 uid gid u g
	[ -e "$ROOT$path" ] || die "$path is missing"
	read -r uid gid <<<"$(stat -c '%u %g' "$ROOT$path")"
	u=$(awk -F: -v id="$uid" '$3 == id { print $1; exit }' "$ROOT/etc/passwd")
	g=$(awk -F: -v id="$gid" '$3 == id { print $1; exit }' "$ROOT/etc/group")
	assert_eq "$path mode owner" "$(stat -c %a "$ROOT$path") $u:$g" "$mode $owner"
}
assert_absent() { [ ! -e "$ROOT$1" ] || die "$1 still exists"; ok "$1 does not exist"; }
assert_same() { cmp -s "$1" "$2" || die "$3: $1 differs from $2"; ok "$3"; }

declare -A took
run_step() {
	local s=$1 t0
	t0=$(date +%s%N)
	echo "== $s"
	"step_$s"
	took[$s]=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
	echo "-- $s: ${took[$s]}s"
}

# ---------------------------------------------------------------------------
step_lint() {
	assert_eq "spec Version" "$(sed -n 's/^Version:[[:space:]]*//p' $NAME.spec)" "$VERSION"
	assert_eq "spec BuildRequires golang" \
		"$(sed -n 's/^BuildRequires:[[:space:]]*golang >= //p' $NAME.spec)" \
		"$(sed -n 's/^go //p' go.mod)"
	# License: lists exactly the licenses of the vendored modules (classified
	# by their texts; one that is none of these fails for a human to look at).
	local f text lic found=()
	mkdir -p "$work/vendor"
	tar -xzf "$DIST/$NAME-$VERSION-vendor.tar.gz" -C "$work/vendor"
	while IFS= read -r f; do
		text=$(tr -s '[:space:]' ' ' < "$f")
		case "$text" in
		*"Mozilla Public License Version 2.0"*) lic=MPL-2.0 ;;
		*"Apache License"*) lic=Apache-2.0 ;;
		*"Permission is hereby granted, free of charge"*) lic=MIT ;;
		*"Redistribution and use"*"Neither the name"* | *"Redistribution and use"*"endorse or promote"*) lic=BSD-3-Clause ;;
		*"Redistribution and use"*) lic=BSD-2-Clause ;;
		*) die "unclassified vendored license ${f#"$work"/vendor/}: add its SPDX id to License: and here" ;;
		esac
		found+=("$lic")
	done < <(find "$work/vendor" -type f \( -iname 'LICENSE*' -o -iname 'COPYING*' \))
	# The project's own license (Apache-2.0, LICENSE) and the vendored modules'.
	assert_eq "License:" \
		"$(sed -n 's/^License:[[:space:]]*//p' $NAME.spec)" \
		"$(printf '%s\n' Apache-2.0 "${found[@]}" | sort -u | paste -sd' ' | sed 's/ / AND /g')"
	local out
	# rpmlint verifies the signatures against its rpm database: a scratch
	# one that holds only the key `make repo` exported (rpmlint's rpmkeys
	# reads %_dbpath from $HOME/.rpmmacros). The spec is linted where its
	# generated Source3 is, as rpmbuild reads it.
	mkdir -p "$work/lint-home" "$work/lint-spec"
	echo "%_dbpath $work/lint-home/rpmdb" > "$work/lint-home/.rpmmacros"
	HOME=$work/lint-home rpmkeys --import "$DIST/RPM-GPG-KEY-$NAME" || die "no key $DIST/RPM-GPG-KEY-$NAME (make repo GPG_KEY=...)"
	cp $NAME.spec "$DIST/$NAME-$VERSION-bundled-provides.inc" "$work/lint-spec/"
	out=$(cd "$work/lint-spec" && HOME=$work/lint-home rpmlint -c "$OLDPWD/packaging/rpmlint.toml" $NAME.spec "$RPM" "$SRPM" 2>&1) || true
	echo "$out" | sed 's/^/  rpmlint: /'
	grep -q ' 0 errors' <<<"$out" || die "rpmlint reports errors"
	local unexpected
	unexpected=$(grep ': W: ' <<<"$out" | grep -Ev "$KEPT_WARNINGS" || true)
	[ -z "$unexpected" ] || die "rpmlint warnings not documented in docs/packaging.md:
$unexpected"
	ok "rpmlint: no errors, only the documented warnings"
	grep -q "^ *' no-signature'" packaging/rpmlint.toml && die "packaging/rpmlint.toml filters no-signature: the RPMs are signed"
	grep -q ' no-signature' <<<"$out" && die "rpmlint: an RPM is not signed"
	ok "rpmlint checks the signature (no no-signature filter, none reported)"
	check_bundled
	# (make test lints and unit-tests the Prometheus rules and the fleet
	# example itself: promtool check rules/config, promtool test rules.)
}

# The spec's bundled(golang(...)) Provides are what the binary in the RPM
# links (`go version -m`), which is what this tree links (`go list -deps`,
# as go.mod says now: a module added since the tarball fails here), and
# every one is in the vendored tree at that version. The SBOM in the RPM
# is that binary's: valid CycloneDX 1.5, one component per module and the
# toolchain.
check_bundled() {
	local x=$work/lint-rpm
	mkdir -p "$x"
	(cd "$x" && rpm2cpio "$RPM" | cpio -idm --quiet)
	local bin=$x/usr/bin/$NAME
	# dep lines, a "=>" line replacing the one before it.
	go version -m "$bin" | awk '$1 == "dep" { if (p != "") print p, v; p = $2; v = $3 } $1 == "=>" { v = $3 }
		END { if (p != "") print p, v }' | sort > "$work/bin-modules"
	GOFLAGS=-mod=mod go list -deps -f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}}{{end}}{{end}}' ./cmd/$NAME |
		sort -u > "$work/tree-modules"
	assert_same "$work/bin-modules" "$work/tree-modules" "the RPM's binary links the modules go list -deps ./cmd/$NAME names ($(wc -l < "$work/tree-modules"))"
	go run ./internal/cmd/pkgmeta provides -lines < "$work/bin-modules" > "$work/want-provides"
	rpm -qp --provides "$RPM" 2>/dev/null | grep '^bundled(golang(' | sort > "$work/got-provides"
	diff -u "$work/want-provides" "$work/got-provides" >&2 || die "the RPM's bundled(golang(...)) Provides (+) are not what its binary links (-)"
	ok "rpm -qp --provides: $(wc -l < "$work/got-provides") bundled(golang(...)), one per module the binary links"
	local m v
	while read -r m v; do
		grep -qxF "# $m $v" "$work/vendor/vendor/modules.txt" || die "$m $v is not in the vendored tree's modules.txt"
	done < "$work/bin-modules"
	ok "every bundled module is in the vendor tarball's vendor/modules.txt at that version"
	local sbom=$x/usr/share/doc/$NAME/$NAME.cdx.json
	[ -f "$sbom" ] || die "no SBOM at /usr/share/doc/$NAME/$NAME.cdx.json"
	AZURELINUX_PROBE_SBOM=$sbom go test -count=1 -run '^TestSBOMFile$' ./internal/pkgmeta >/dev/null ||
		die "the SBOM does not validate against the CycloneDX 1.5 schema"
	assert_eq "SBOM components (modules, stdlib)" \
		"$(python3 -c 'import json, sys; print("\n".join(sorted(c["name"] + " " + c["version"] for c in json.load(open(sys.argv[1]))["components"])))' "$sbom" | md5sum)" \
		"$( (cat "$work/bin-modules"; echo "stdlib $(go version "$bin" | awk '{ print $2 }')") | sort | md5sum)"
	ok "SBOM: CycloneDX 1.5, schema-valid, $(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["components"]))' "$sbom") components = the binary's modules + stdlib $(go version "$bin" | awk '{ print $2 }')"
}

# ---------------------------------------------------------------------------
step_unit() {
	local unit=packaging/$NAME.service out score
	out=$(systemd-analyze security --offline=true "$unit" 2>&1)
	grep '✗' <<<"$out" | sed 's/^/  /'
	score=$(sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p' <<<"$out")
	[ -n "$score" ] || die "no exposure level in: $out"
	echo "  exposure level: $score (limit $MAX_EXPOSURE)"
	awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }' || die "exposure $score > $MAX_EXPOSURE"
	ok "systemd-analyze security: $score"
	echo "$score" > "$work/exposure"
	# The directives the issue requires, present as written.
	local d
	for d in Type=notify WatchdogSec=30s Restart=on-failure User=$NAME ProtectSystem=strict \
		ProtectHome=yes PrivateTmp=yes NoNewPrivileges=yes 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' \
		'SystemCallFilter=@system-service bpf perf_event_open' \
		'AmbientCapabilities=CAP_BPF CAP_PERFMON CAP_SYSLOG' 'CapabilityBoundingSet=CAP_BPF CAP_PERFMON CAP_SYSLOG' \
		PrivateIPC=yes MemoryMax=256M TasksMax=64 LimitNOFILE=1024; do
		grep -qxF "$d" "$unit" || die "$unit lacks '$d'"
	done
	ok "unit has the required directives"
	# systemd-analyze verify needs a whole system (sysinit.target, the
	# binary, /bin/kill): the container step runs it under systemd.
}

# ---------------------------------------------------------------------------
# A test-only base system: a real /bin/sh, getent, groupadd and useradd with
# their shared libraries (copied from this host) so that the package's
# scriptlets run in the empty install root, plus Provides for the rest of
# what the package requires (systemd, shadow-utils).
build_testbase() {
	local b=$work/testbase root=$work/testbase/root f lib dest
	mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib64,etc} "$b/rpmbuild"
	ln -s usr/bin "$root/bin"
	ln -s usr/sbin "$root/sbin"
	ln -s usr/lib "$root/lib"
	ln -s usr/lib64 "$root/lib64"
	local tools=("$(command -v dash)" "$(command -v getent)" "$(command -v groupadd)" "$(command -v useradd)")
	cp -L "${tools[0]}" "$root/usr/bin/sh"
	cp -L "${tools[1]}" "$root/usr/bin/getent"
	cp -L "${tools[2]}" "${tools[3]}" "$root/usr/sbin/"
	for lib in $(ldd "${tools[@]}" | awk '/=> \// { print $3 } /^\t\/.*ld-linux/ { print $1 }' | sort -u); do
		dest=$root/usr/${lib#/usr/}
		mkdir -p "$(dirname "$dest")"
		cp -L "$lib" "$dest"
	done
	# The dynamic linker as the probe's ELF interpreter names it.
	local ld
	ld=$(ldd "$(command -v dash)" | awk '/ld-linux/ { print $1 }')
	[ -e "$root/usr/lib64/$(basename "$ld")" ] || cp -L "$ld" "$root/usr/lib64/"
	echo "$(dirname "$(ldd "$(command -v dash)" | awk '/libc.so/ { print $3 }')" | sed 's|^/usr||')" \
		> "$root/etc/ld.so.conf"
	cat > "$root/etc/passwd" <<-EOF
		root:x:0:0:root:/root:/bin/sh
	EOF
	cat > "$root/etc/group" <<-EOF
		root:x:0:
	EOF
	echo 'root:*::0:99999:7:::' > "$root/etc/shadow"
	echo 'root:*::' > "$root/etc/gshadow"
	chmod 0640 "$root/etc/shadow" "$root/etc/gshadow"
	cp /etc/login.defs "$root/etc/login.defs"
	(cd "$root" && find . -mindepth 1 \( -type f -o -type l \) | sed 's|^\.||' | sort) > "$b/files"
	sed -i -e 's|^/etc/.*|%config(noreplace) &|' "$b/files"
	cat > "$b/testbase.spec" <<-EOF
		Name: $NAME-testbase
		Version: 1
		Release: 1
		Summary: Test-only base system for the $NAME install test
		License: LicenseRef-test-only
		Provides: /bin/sh systemd shadow-utils
		AutoReq: no
		%global debug_package %{nil}
		%global __os_install_post %{nil}
		%global _build_id_links none
		%description
		The minimum that the $NAME RPM's scriptlets need. Never shipped.
		%install
		mkdir -p %{buildroot}
		cp -a $root/. %{buildroot}/
		%files -f $b/files
		%dir /usr/bin
		%dir /usr/sbin
		%dir /usr/lib64
		%dir /etc
	EOF
	rpmbuild -bb --quiet $NODEPS --define "_topdir $b/rpmbuild" --define "_rpmdir $work/repo" \
		"$b/testbase.spec" >/dev/null
}

# dnf against the test repository only, into ROOT, with the rpm database
# where Azure Linux 4.0 keeps it (Debian's rpm defaults to ~/.rpmdb).
setup_dnf() {
	mkdir -p "$work/home" "$work/reposd" "$work/repo"
	echo '%_dbpath /usr/lib/sysimage/rpm' > "$work/home/.rpmmacros"
	ROOT=$work/root
	mkdir -p "$ROOT"
}
dnf_root() {
	HOME=$work/home dnf -y -q --installroot="$ROOT" --releasever=4.0 --noplugins --nogpgcheck \
		--setopt=reposdir="$work/reposd" --setopt=cachedir="$work/dnfcache" \
		--setopt=install_weak_deps=False \
		--repofrompath=lab,"file://$work/repo" --repo=lab "$@"
}
rpm_root() { HOME=$work/home rpm --root="$ROOT" "$@"; }

# The installed binary prints the facts of a fixture tree exactly as the
# golden file says (every collector, as the golden test runs them, but azure:
# the golden test serves it a mock instance metadata endpoint).
check_installed_binary() {
	local bin=$ROOT/usr/bin/$NAME tree=collectors/testdata/trees/azl4-azure-gen2 flags=()
	local c
	for c in $("$bin" --help 2>&1 | grep -o -- '--\[no-\]collector\.[a-z0-9_-]*' | sed 's/.*collector\.//' | grep -vx disable-defaults | sort -u); do
		[ "$c" = azure ] || flags+=("--collector.$c")
	done
	"$bin" facts --format=prometheus --log.level=error --path.rootfs="$PWD/$tree" \
		--config.file="$ROOT/etc/$NAME/config.yml" --collector.disable-defaults "${flags[@]}" > "$work/facts.prom" || true
	# (azurelinux_gpu_devices_expected is the azure collector's too: the VM
	# size comes from the instance metadata.)
	no_azure() { grep -v -e '^# [A-Z]* azurelinux_azure_' -e '^azurelinux_azure_' -e 'collector="azure"' -e 'azurelinux_gpu_devices_expected' "$1"; }
	no_azure collectors/testdata/golden/azl4-azure-gen2.prom > "$work/golden.prom"
	no_azure "$work/facts.prom" > "$work/facts-no-azure.prom"
	assert_same "$work/facts-no-azure.prom" "$work/golden.prom" \
		"installed binary: facts of $tree match the golden file (${#flags[@]} collectors)"
}

# The repository `make repo` made of dist/ (signed RPMs, signed
# repomd.xml, the exported key, the repo file it wrote) and a test-only
# base repository with the test base RPM, which stands in for Azure
# Linux's own (signed) base repository: its signatures are not under test.
setup_signed_repos() {
	mkdir -p "$work/base" "$work/signed-reposd"
	find "$work/repo" -name "$NAME-testbase-*.rpm" -exec cp {} "$work/base/" \;
	createrepo_c --quiet "$work/base"
	printf '[base]\nname=test base (not under test)\nbaseurl=file://%s\ngpgcheck=0\nrepo_gpgcheck=0\n' "$work/base" \
		> "$work/signed-reposd/base.repo"
	[ -e "$DIST/repodata/repomd.xml.asc" ] || die "$DIST/repodata/repomd.xml is not signed (make repo GPG_KEY=...)"
	cp "$DIST/$NAME.repo" "$work/signed-reposd/"
	KEYFILE=$DIST/RPM-GPG-KEY-$NAME
	KEY_FPR=$(gpg --batch --with-colons --show-keys "$KEYFILE" | awk -F: '$1 == "fpr" { print $10; exit }')
	[ -n "$KEY_FPR" ] || die "no key in $KEYFILE"
}
# dnf_signed ROOT REPOSD ARGS...: dnf as a VM runs it, signature checks as
# the repo files say (no --nogpgcheck), into ROOT.
dnf_signed() {
	local root=$1 reposd=$2
	shift 2
	HOME=$work/home dnf -y --installroot="$root" --releasever=4.0 --noplugins \
		--setopt=reposdir="$reposd" --setopt=cachedir="$root.dnfcache" --setopt=install_weak_deps=False "$@"
}

step_install() {
	setup_dnf
	build_testbase
	cp "$RPM" "$work/repo/"
	createrepo_c --quiet "$work/repo"
	setup_signed_repos
	# What dist/$NAME.repo says, as make repo wrote it.
	local f
	for f in gpgcheck=1 repo_gpgcheck=1 "gpgkey=file://$(realpath "$DIST")/RPM-GPG-KEY-$NAME"; do
		grep -qxF "$f" "$DIST/$NAME.repo" || die "$DIST/$NAME.repo lacks $f"
	done
	ok "$DIST/$NAME.repo: gpgcheck=1, repo_gpgcheck=1, gpgkey= the exported key"
	assert_eq "RPM signed by" "$(rpm -qp --qf '%{RSAHEADER:pgpsig}' "$RPM" 2>/dev/null | sed 's/.*Key ID //')" \
		"$(tr 'A-F' 'a-f' <<<"${KEY_FPR: -16}")"
	# As the README says: import the key, then install through the repo file.
	rpm_root --import "$KEYFILE"
	local out
	out=$(dnf_signed "$ROOT" "$work/signed-reposd" install $NAME 2>&1) || die "signed install failed:
$out"
	sed 's/^/  dnf: /' <<<"$out" | grep -Ei 'gpg|sign|key|Installed|Complete' || true
	assert_eq "installed package signed by" "$(rpm_root -q --qf '%{RSAHEADER:pgpsig}' $NAME | sed 's/.*Key ID //')" \
		"$(tr 'A-F' 'a-f' <<<"${KEY_FPR: -16}")"
	ok "dnf installed $NAME from $DIST/ with gpgcheck=1 and repo_gpgcheck=1"
	assert_eq "installed package" "$(rpm_root -q --qf '%{NAME}-%{VERSION}' $NAME)" "$NAME-$VERSION"
	rpm_root -V $NAME || die "rpm -V $NAME reports changes right after install"
	ok "rpm -V: clean"
	assert_stat /usr/bin/$NAME 755 root:root
	assert_stat /usr/lib/systemd/system/$NAME.service 644 root:root
	assert_stat /usr/lib/systemd/system-preset/50-$NAME.preset 644 root:root
	assert_stat /usr/lib/sysusers.d/$NAME.conf 644 root:root
	assert_stat /etc/$NAME 755 root:root
	assert_stat /etc/$NAME/config.yml 644 root:root
	assert_stat /etc/sysconfig/$NAME 644 root:root
	assert_stat /etc/$NAME/checks.d 755 root:root
	assert_stat /var/lib/$NAME 755 root:root
	for f in examples/checks.d/*.yml; do
		assert_same "$ROOT/usr/share/doc/$NAME/$f" "$f" "example $f in the docs"
	done
	# Alert rules and example configuration, not the rules' promtool tests.
	local f n=0
	for f in packaging/prometheus/*.yml; do
		case "$f" in
		*.test.yml) assert_absent "/usr/share/$NAME/prometheus/$(basename "$f")" ;;
		*)
			assert_stat "/usr/share/$NAME/prometheus/$(basename "$f")" 644 root:root
			assert_same "$ROOT/usr/share/$NAME/prometheus/$(basename "$f")" "$f" "$(basename "$f") installed"
			n=$((n + 1))
			;;
		esac
	done
	[ -e "$ROOT/usr/share/$NAME/prometheus/$NAME.rules.yml" ] || die "no alert rules installed"
	assert_eq "files in /usr/share/$NAME/prometheus" "$(find "$ROOT/usr/share/$NAME/prometheus" -type f | wc -l)" "$n"
	assert_stat /usr/share/$NAME/web-config.yml 644 root:root
	assert_same "$ROOT/usr/share/$NAME/web-config.yml" packaging/web-config.yml "example web config installed"
	for f in README.md metrics.md packaging.md $NAME.cdx.json; do
		assert_stat /usr/share/doc/$NAME/$f 644 root:root
	done
	# Every vendored module's license file, as %license.
	assert_eq "vendored license files installed" \
		"$(cd "$ROOT/usr/share/licenses/$NAME/vendor" && find . -type f | sort | md5sum)" \
		"$(tar -tzf "$DIST/$NAME-$VERSION-vendor.tar.gz" | grep -iE '/(LICENSE|COPYING|NOTICE)[^/]*$' | sed 's|^vendor/|./|' | sort | md5sum)"
	assert_same "$ROOT/usr/lib/systemd/system/$NAME.service" packaging/$NAME.service "unit is packaging/$NAME.service"
	assert_same "$ROOT/etc/$NAME/config.yml" agent/default.yml "config.yml is agent/default.yml"
	grep -qx "enable $NAME.service" "$ROOT/usr/lib/systemd/system-preset/50-$NAME.preset" || die "preset does not enable the unit"
	ok "preset enables $NAME.service"
	# The dedicated user, as the sysusers file describes it.
	local pw
	pw=$(grep "^$NAME:" "$ROOT/etc/passwd") || die "no $NAME user in the install root"
	IFS=: read -r _ _ uid gid _ home shell <<<"$pw"
	[ "$uid" -gt 0 ] && [ "$uid" -lt 1000 ] || die "$NAME uid $uid is not a system uid"
	assert_eq "$NAME user home and shell" "$home $shell" "/ /usr/sbin/nologin"
	assert_eq "$NAME primary group" "$(awk -F: -v g="$gid" '$3 == g { print $1 }' "$ROOT/etc/group")" "$NAME"
	check_installed_binary
	local v
	v=$("$ROOT/usr/bin/$NAME" version)
	grep -q "version $VERSION (branch: rpm, revision: $(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown))" <<<"$v" ||
		die "version/revision not injected: $v"
	ok "installed binary: $(head -1 <<<"$v")"
}

# ---------------------------------------------------------------------------
# flip_byte FILE: one byte of FILE's last kilobyte (the RPM payload) XOR 1.
flip_byte() {
	python3 -c 'import os, sys
f = open(sys.argv[1], "r+b"); n = os.path.getsize(sys.argv[1]) - 1000
f.seek(n); b = f.read(1); f.seek(n); f.write(bytes([b[0] ^ 1]))' "$1"
}
# bad_repo CASE: a copy of dist/'s repository (the RPM, its metadata and
# signature, the key) in $work/sig/CASE/repo, with the repo file pointed at
# it; prints the copy's RPM.
bad_repo() {
	local d=$work/sig/$1 rel
	rel=${RPM#"$(realpath "$DIST")"/}
	mkdir -p "$d/repo/$(dirname "$rel")" "$d/reposd"
	cp "$RPM" "$d/repo/$rel"
	cp -r "$DIST/repodata" "$KEYFILE" "$d/repo/"
	cp "$work/signed-reposd/base.repo" "$d/reposd/"
	sed -e "s|@REPO_URL@|file://$d/repo|" packaging/$NAME.repo > "$d/reposd/$NAME.repo"
	echo "$d/repo/$rel"
}
# resign_repo DIR: new metadata for DIR, repomd.xml signed with the test key
# (as a repository whose RPM, not its metadata, is wrong).
resign_repo() {
	createrepo_c --quiet --update "$1"
	gpg --batch --yes --armor --local-user "$KEY_FPR" --detach-sign -o "$1/repodata/repomd.xml.asc" "$1/repodata/repomd.xml"
}
# refused CASE WHAT ERROR...: dnf, with the key imported, refuses to
# install from $work/sig/CASE, printing every ERROR line (dnf's own).
refused() {
	local c=$1 what=$2 root=$work/sig/$1/root out want
	shift 2
	mkdir -p "$root"
	HOME=$work/home rpm --root="$root" --import "$KEYFILE"
	if out=$(dnf_signed "$root" "$work/sig/$c/reposd" install $NAME 2>&1); then
		die "$what: dnf installed it:
$out"
	fi
	for want in "$@"; do
		grep -qxF -- "$want" <<<"$out" || die "$what: dnf failed without the line '$want':
$out"
		echo "  dnf: $want"
	done
	HOME=$work/home rpm --root="$root" -q $NAME >/dev/null 2>&1 && die "$what: $NAME is installed"
	ok "refused: $what"
}

step_signing() {
	if [ -z "${KEY_FPR:-}" ]; then
		setup_dnf
		build_testbase
		setup_signed_repos
	fi
	gpg --batch --list-secret-keys "$KEY_FPR" >/dev/null 2>&1 ||
		die "the secret test key $KEY_FPR is not in GNUPGHOME=${GNUPGHOME:-~/.gnupg} (run make package-test)"
	local r
	# Every package in dist/ carries a signature that verifies against
	# the exported key alone; so does repomd.xml.
	local db=$work/sig/rpmdb
	mkdir -p "$db"
	rpmkeys --dbpath "$db" --import "$KEYFILE"
	for r in "$RPM" "$SRPM"; do
		rpmkeys --dbpath "$db" --checksig "$r" | grep -q 'digests signatures OK' || die "$r: $(rpmkeys --dbpath "$db" --checksig "$r")"
	done
	ok "rpmkeys --checksig: digests signatures OK ($(basename "$RPM"), $(basename "$SRPM"))"
	gpg --batch --no-default-keyring --keyring "$work/sig/verify.kbx" --import "$KEYFILE" 2>/dev/null
	gpg --batch --no-default-keyring --keyring "$work/sig/verify.kbx" --verify "$DIST/repodata/repomd.xml.asc" "$DIST/repodata/repomd.xml" 2>/dev/null ||
		die "$DIST/repodata/repomd.xml.asc does not verify against $KEYFILE"
	ok "repodata/repomd.xml.asc verifies against $(basename "$KEYFILE")"

	# make repo without a key refuses, and says how to name one; only
	# UNSIGNED=1 makes an unsigned repository, whose repo file says so.
	local u=$work/sig/unsigned-mode out
	mkdir -p "$u/x86_64"
	cp "$RPM" "$u/x86_64/"
	rpmsign --delsign "$u/x86_64/$(basename "$RPM")" >/dev/null
	if out=$(GPG_KEY='' UNSIGNED='' scripts/repo.sh "$u" "file://$u" 2>&1); then
		die "make repo without GPG_KEY made a repository: $out"
	fi
	grep -qF 'make repo: no signing key: set GPG_KEY' <<<"$out" || die "make repo without GPG_KEY: $out"
	[ ! -e "$u/repodata" ] && [ ! -e "$u/$NAME.repo" ] || die "make repo without GPG_KEY left a repository behind"
	ok "make repo without GPG_KEY: refused ($(head -1 <<<"$out"))"
	GPG_KEY='' UNSIGNED=1 scripts/repo.sh "$u" "file://$u" >/dev/null 2>&1 || die "make repo UNSIGNED=1 failed"
	[ -e "$u/repodata/repomd.xml" ] && [ ! -e "$u/repodata/repomd.xml.asc" ] && [ ! -e "$u/RPM-GPG-KEY-$NAME" ] ||
		die "UNSIGNED=1: not an unsigned repository"
	grep -qx gpgcheck=0 "$u/$NAME.repo" && grep -qx repo_gpgcheck=0 "$u/$NAME.repo" && ! grep -q '^gpgkey=' "$u/$NAME.repo" ||
		die "UNSIGNED=1: the repo file does not turn the checks off: $(cat "$u/$NAME.repo")"
	ok "make repo UNSIGNED=1: an unsigned repository, its repo file with gpgcheck=0, repo_gpgcheck=0"
	# A key that is not in the keyring is named in the error.
	out=$(GPG_KEY=nobody@azurelinux-probe.invalid scripts/repo.sh "$u" "file://$u" 2>&1) && die "an unknown GPG_KEY signed: $out"
	grep -qF 'GPG_KEY=nobody@azurelinux-probe.invalid: no such secret key' <<<"$out" || die "unknown GPG_KEY: $out"
	ok "make repo GPG_KEY=<not in the keyring>: refused, naming the key"

	# 0. The control: the copy as it is installs (the refusals below are
	# the changes', not the copy's).
	bad_repo control >/dev/null
	rpm_at() { HOME=$work/home rpm --root="$work/sig/control/root" "$@"; }
	mkdir -p "$work/sig/control/root"
	rpm_at --import "$KEYFILE"
	dnf_signed "$work/sig/control/root" "$work/sig/control/reposd" -q install $NAME >/dev/null 2>&1 ||
		die "the unmodified copy of $DIST/ does not install"
	ok "control: the unmodified copy of $DIST/ installs"
	# 1. One byte of the RPM changed, the signed metadata as published.
	r=$(bad_repo tampered)
	flip_byte "$r"
	refused tampered "one byte of the RPM changed (signed metadata unchanged)" "Package \"$NAME-$VERSION-1.$ARCH\" from local repository \"$NAME\" has incorrect checksum" \
		"Error: Some packages from local repository have incorrect checksum"
	# 2. The same byte changed and the metadata remade and signed: the
	# package's own signature is what refuses it.
	r=$(bad_repo tampered-resigned)
	flip_byte "$r"
	resign_repo "$(dirname "$(dirname "$r")")"
	refused tampered-resigned "one byte of the RPM changed (metadata remade and signed)" \
		"Problem opening package $(basename "$RPM")" "Error: GPG check FAILED"
	# 3. The RPM without its signature, in signed metadata.
	r=$(bad_repo unsigned)
	rpmsign --delsign "$r" >/dev/null
	resign_repo "$(dirname "$(dirname "$r")")"
	refused unsigned "an unsigned RPM (metadata signed)" \
		"Package $(basename "$RPM") is not signed" "Error: GPG check FAILED"
	# 4. repomd.xml changed after it was signed (its revision).
	r=$(bad_repo repomd)
	sed -i 's|<revision>\([0-9]*\)</revision>|<revision>\11</revision>|' "$work/sig/repomd/repo/repodata/repomd.xml"
	cmp -s "$work/sig/repomd/repo/repodata/repomd.xml" "$DIST/repodata/repomd.xml" && die "repomd.xml unchanged"
	refused repomd "repomd.xml changed after signing" \
		"Error: Failed to download metadata for repo '$NAME': repomd.xml GPG signature verification error: Bad GPG signature"
}

# ---------------------------------------------------------------------------
# Reproducible: a second build of the same source tarball, with the spec
# the tarball carries, SOURCE_DATE_EPOCH as the first build had it (its
# build time), in another directory, another time zone, and an empty Go
# build cache (nothing reused from the first), gives a byte-identical
# binary and the same file list (names, modes, owners, sizes, digests).
rpm_files() { rpm -qp --qf '[%{FILENAMES} %{FILEMODES:octal} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILESIZES} %{FILEDIGESTS} %{FILEMTIMES}\n]' "$1" 2>/dev/null; }
step_repro() {
	local d=$work/repro epoch rpm2 t0
	mkdir -p "$d/src" "$d/sources" "$d/x1" "$d/x2"
	epoch=$(rpm -qp --qf '%{BUILDTIME}' "$RPM" 2>/dev/null)
	tar -xzf "$DIST/$NAME-$VERSION.tar.gz" -C "$d/src" "$NAME-$VERSION/$NAME.spec"
	cp "$DIST/$NAME-$VERSION.tar.gz" "$DIST/$NAME-$VERSION-vendor.tar.gz" "$DIST/$NAME.sysusers" \
		"$DIST/$NAME-$VERSION-bundled-provides.inc" "$d/sources/"
	t0=$(date +%s)
	SOURCE_DATE_EPOCH=$epoch TZ=Pacific/Kiritimati GOCACHE=$d/gocache \
		rpmbuild -bb --nocheck $NODEPS --define "_topdir $d/top" --define "_sourcedir $d/sources" \
		--define "_rpmdir $d/rpms" "$d/src/$NAME-$VERSION/$NAME.spec" > "$d/build.log" 2>&1 ||
		{ tail -30 "$d/build.log"; die "second build failed"; }
	echo "  second build (empty GOCACHE, $d/top): $(($(date +%s) - t0)) s"
	rpm2=$(ls "$d/rpms/$ARCH/$NAME-$VERSION"-*."$ARCH".rpm)
	(cd "$d/x1" && rpm2cpio "$RPM" | cpio -idm --quiet)
	(cd "$d/x2" && rpm2cpio "$rpm2" | cpio -idm --quiet)
	local h1 h2
	h1=$(sha256sum < "$d/x1/usr/bin/$NAME" | cut -d' ' -f1)
	h2=$(sha256sum < "$d/x2/usr/bin/$NAME" | cut -d' ' -f1)
	echo "  /usr/bin/$NAME sha256: first build $h1"
	echo "  /usr/bin/$NAME sha256: second build $h2"
	assert_eq "binary of the second build" "$h2" "$h1"
	rpm_files "$RPM" > "$d/files1"
	rpm_files "$rpm2" > "$d/files2"
	diff -u "$d/files1" "$d/files2" >&2 || die "the two builds' RPMs list different files (- first, + second)"
	ok "the two RPMs list the same $(wc -l < "$d/files1") files (name, mode, owner, size, digest, mtime)"
	assert_eq "RPM build time" "$(rpm -qp --qf '%{BUILDTIME}' "$rpm2" 2>/dev/null)" "$epoch"
	echo "$h1" > "$work/repro-hash"
}

# ---------------------------------------------------------------------------
# N+1: the same sources with the next patch version and a changed default
# configuration (so that the edited config.yml gets a .rpmnew); the
# sysconfig file is unchanged (so it must not get one).
build_next() {
	local src=$work/next/src v1 top
	v1=$(awk -F. -v OFS=. '{ $NF = $NF + 1; print }' <<<"$VERSION")
	NEXT=$v1
	mkdir -p "$src" "$work/next/sources"
	tar -xzf "$DIST/$NAME-$VERSION.tar.gz" -C "$src"
	top=$src/$NAME-$v1
	mv "$src/$NAME-$VERSION" "$top"
	echo "$v1" > "$top/VERSION"
	printf '\n# Changed in %s (upgrade test).\n' "$v1" >> "$top/agent/default.yml"
	sed -i -e "s/^Version:.*/Version:        $v1/" \
		-e "s/^%changelog$/%changelog\n* $(LC_ALL=C date -u '+%a %b %d %Y') package-test <test@example.org> - $v1-1\n- Upgrade test build.\n/" \
		"$top/$NAME.spec"
	tar -C "$src" -czf "$work/next/sources/$NAME-$v1.tar.gz" "$NAME-$v1"
	cp "$DIST/$NAME-$VERSION-vendor.tar.gz" "$work/next/sources/$NAME-$v1-vendor.tar.gz"
	cp "$DIST/$NAME.sysusers" "$work/next/sources/"
	cp "$DIST/$NAME-$VERSION-bundled-provides.inc" "$work/next/sources/$NAME-$v1-bundled-provides.inc"
	rpmbuild -bb --quiet --nocheck $NODEPS --define "_topdir $work/next/rpmbuild" \
		--define "_sourcedir $work/next/sources" --define "_rpmdir $work/repo" \
		"$top/$NAME.spec" > "$work/next/build.log" 2>&1 || { cat "$work/next/build.log"; die "N+1 build failed"; }
	cp "$top/agent/default.yml" "$work/next/default.yml"
}

step_upgrade() {
	[ -n "${ROOT:-}" ] || die "upgrade needs the install step"
	build_next
	# Local edits: a real setting change in config.yml and in sysconfig.
	sed -i '0,/interval: 15s/s//interval: 20s/' "$ROOT/etc/$NAME/config.yml"
	echo '# edited by the upgrade test' >> "$ROOT/etc/$NAME/config.yml"
	sed -i 's/^ARGS=.*/ARGS="--log.level=debug"/' "$ROOT/etc/sysconfig/$NAME"
	cp "$ROOT/etc/$NAME/config.yml" "$work/edited-config.yml"
	cp "$ROOT/etc/sysconfig/$NAME" "$work/edited-sysconfig"
	createrepo_c --quiet --update "$work/repo"
	dnf_root --refresh upgrade $NAME
	assert_eq "upgraded package" "$(rpm_root -q --qf '%{NAME}-%{VERSION}' $NAME)" "$NAME-$NEXT"
	grep -q "version $NEXT " <<<"$("$ROOT/usr/bin/$NAME" version)" || die "binary was not upgraded"
	ok "binary is $NEXT"
	assert_same "$ROOT/etc/$NAME/config.yml" "$work/edited-config.yml" "edited config.yml survives the upgrade"
	assert_same "$ROOT/etc/$NAME/config.yml.rpmnew" "$work/next/default.yml" "config.yml.rpmnew holds the new default"
	assert_same "$ROOT/etc/sysconfig/$NAME" "$work/edited-sysconfig" "edited sysconfig survives the upgrade"
	assert_absent "/etc/sysconfig/$NAME.rpmnew"
	assert_stat /etc/$NAME/config.yml 644 root:root
	assert_stat /usr/lib/systemd/system/$NAME.service 644 root:root
	assert_stat /usr/lib/systemd/system-preset/50-$NAME.preset 644 root:root
	grep -q "^$NAME:" "$ROOT/etc/passwd" || die "user lost on upgrade"
	# The edited configuration is valid and used.
	"$ROOT/usr/bin/$NAME" facts --format=json --log.level=error --config.file="$ROOT/etc/$NAME/config.yml" \
		--collector.disable-defaults --collector.os --collector.kernel \
		--path.rootfs="$PWD/collectors/testdata/trees/azl4-azure-gen2" > /dev/null || die "facts with the edited config"
	ok "the edited config loads"
}

# ---------------------------------------------------------------------------
step_remove() {
	[ -n "${ROOT:-}" ] || die "remove needs the install step"
	dnf_root --setopt=clean_requirements_on_remove=False remove $NAME
	rpm_root -q $NAME >/dev/null 2>&1 && die "$NAME is still installed"
	ok "$NAME is not installed"
	assert_absent /usr/bin/$NAME
	assert_absent /usr/lib/systemd/system/$NAME.service
	assert_absent /usr/lib/systemd/system-preset/50-$NAME.preset
	assert_absent /usr/lib/sysusers.d/$NAME.conf
	assert_absent /usr/share/$NAME
	assert_absent /usr/share/doc/$NAME
	assert_absent /etc/$NAME/config.yml
	assert_absent /etc/$NAME/checks.d
	assert_absent /var/lib/$NAME
	assert_same "$ROOT/etc/$NAME/config.yml.rpmsave" "$work/edited-config.yml" "edited config.yml kept as config.yml.rpmsave"
	assert_same "$ROOT/etc/sysconfig/$NAME.rpmsave" "$work/edited-sysconfig" "edited sysconfig kept as .rpmsave"
	# Fedora policy: a package never deletes its system user.
	grep -q "^$NAME:" "$ROOT/etc/passwd" || die "user removed"
	ok "the $NAME user stays"
}

# ---------------------------------------------------------------------------
cexec() { "$SC" exec "$ct_pid" "$@"; }
prop() { cexec systemctl show -p "$1" --value $NAME.service; }

step_container() {
	"$SC" create
	local lower=/var/cache/azurelinux-probe-test/debian12-systemd r=$work/ct/root
	mkdir -p "$work/ct/upper" "$work/ct/work" "$r"
	# The cached root stays pristine: an overlay (or a copy) takes the changes.
	if mount -t overlay overlay -o "lowerdir=$lower,upperdir=$work/ct/upper,workdir=$work/ct/work" "$r" 2>/dev/null; then
		ct_mount=$r
	else
		cp -a --reflink=auto "$lower/." "$r/"
	fi
	(cd "$r" && rpm2cpio "$RPM" | cpio -idmu --quiet)
	# A modules.builtin naming a watched module that this kernel does not
	# have, 0644 as the kernel package installs it: the unit must read it
	# (/usr/lib/modules visible; no CAP_DAC_READ_SEARCH needed) to report
	# the module.
	local release mod
	release=$(uname -r)
	for mod in $(sed -n '/^    modules:/,/^    [a-z_]*:/s/^      - //p' agent/default.yml); do
		grep -qs "^$mod " /proc/modules || [ -e "/sys/module/$mod" ] || break
	done
	mkdir -p "$r/usr/lib/modules/$release"
	echo "kernel/drivers/test/$mod.ko" > "$r/usr/lib/modules/$release/modules.builtin"
	chmod 0644 "$r/usr/lib/modules/$release/modules.builtin"
	local port
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	sed -i "s|^ARGS=.*|ARGS=\"--web.listen-address=127.0.0.1:$port\"|" "$r/etc/sysconfig/$NAME"

	# bpfcheck runs the bpf() calls of the eBPF collector under the unit's
	# sandbox: a oneshot copy of the packaged unit (no CAP_SYS_ADMIN: the
	# GET_NEXT_ID calls fail, the inventory uses BPF iterators instead).
	CGO_ENABLED=0 go build -o "$r/usr/local/bin/bpfcheck" ./packaging/test/bpfcheck
	local v
	for v in unit; do
		sed -e 's/^Type=notify/Type=oneshot/' -e '/^WatchdogSec=/d' -e '/^ExecReload=/d' -e '/^Restart/d' \
			-e 's|^ExecStart=.*|ExecStart=/usr/local/bin/bpfcheck|' \
			"$r/usr/lib/systemd/system/$NAME.service" > "$r/etc/systemd/system/bpfcheck-$v.service"
	done
	# The package's scriptlets, run below under the container's systemd.
	rpm -qp --qf '%{POSTIN}' "$RPM" > "$r/root/post.sh"
	rpm -qp --qf '%{POSTUN}' "$RPM" > "$r/root/postun.sh"
	rpm -qp --qf '%{PREUN}' "$RPM" > "$r/root/preun.sh"

	# What a container lacks and a VM's systemd has: nspawn's default
	# bounding set has no CAP_BPF, CAP_PERFMON and CAP_SYSLOG, and its own seccomp filter
	# denies bpf() and perf_event_open() to every process under the
	# container's systemd, whatever their capabilities.
	# Nor the kernel log: CAP_SYSLOG and the host's /dev/kmsg (the kmsg
	# collector, bound read-only into the unit's private /dev).
	ct_pid=$(SYSTEMD_CONTAINER_NSPAWN_ARGS="--capability=CAP_BPF,CAP_PERFMON,CAP_SYSLOG --bind-ro=/dev/kmsg --system-call-filter=bpf --system-call-filter=perf_event_open" \
		"$SC" start "$r")
	echo "  container init: pid $ct_pid, systemd $(cexec systemctl --version | awk 'NR==1 { print $2 }')"
	cexec systemd-sysusers /usr/lib/sysusers.d/$NAME.conf
	# Owners and modes as rpm would set them (cpio only unpacks).
	rpm -qp --qf '[%{FILEMODES:octal} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILENAMES}\n]' "$RPM" |
		while read -r mode user group path; do
			cexec chown -h "$user:$group" "$path"
			[ -L "$r$path" ] || cexec chmod "$(printf '%o' $((8#$mode & 07777)))" "$path"
		done
	local out
	out=$(cexec systemd-analyze verify /usr/lib/systemd/system/$NAME.service 2>&1) || die "verify in container: $out"
	ok "systemd-analyze verify under systemd $(cexec systemctl --version | awk 'NR==1 { print $2 }'): clean"
	# The package's own %post (first install, $1 = 1): the preset enables the
	# unit and, systemd running, it starts.
	cexec sh -e /root/post.sh 1
	assert_eq "enabled by the preset" "$(cexec systemctl is-enabled $NAME.service)" enabled
	assert_eq "started by %post" "$(cexec systemctl is-active $NAME.service)" active
	# What the README tells users where the preset does not apply.
	cexec systemctl enable --now $NAME.service || { cexec journalctl -u $NAME --no-pager | tail -30; die "enable --now failed"; }

	assert_eq "ActiveState/SubState" "$(prop ActiveState)/$(prop SubState)" active/running
	assert_eq "Type" "$(prop Type)" notify
	assert_eq "WatchdogUSec" "$(prop WatchdogUSec)" 30s
	local pid status
	pid=$(prop MainPID)
	status=$(cexec cat /proc/$pid/status)
	local uid
	uid=$(cexec id -u $NAME)
	assert_eq "main process uid (real effective saved fs)" "$(awk '/^Uid:/ { print $2, $3, $4, $5 }' <<<"$status")" "$uid $uid $uid $uid"
	assert_eq "main process user" "$(cexec ps -o user= -p "$pid")" "$NAME"
	# CAP_SYSLOG(34) CAP_PERFMON(38) CAP_BPF(39), as far as the container's
	# own bounding set has them (systemd-nspawn leaves CAP_SYSLOG out of its
	# default set); the ambient set is cleared at start (agent/cli.go), so no
	# child inherits them but the eBPF one (CAP_BPF, CAP_PERFMON).
	local bnd1 want
	bnd1=$(cexec cat /proc/1/status | awk '/^CapBnd:/ { print $2 }')
	want=$(printf '%016x' $((0x000000c400000000 & 0x$bnd1)))
	assert_eq "CapEff" "$(awk '/^CapEff:/ { print $2 }' <<<"$status")" $want
	assert_eq "CapBnd" "$(awk '/^CapBnd:/ { print $2 }' <<<"$status")" $want
	assert_eq "CapAmb" "$(awk '/^CapAmb:/ { print $2 }' <<<"$status")" 0000000000000000
	assert_eq "NoNewPrivs" "$(awk '/^NoNewPrivs:/ { print $2 }' <<<"$status")" 1
	assert_eq "Seccomp (filter mode)" "$(awk '/^Seccomp:/ { print $2 }' <<<"$status")" 2
	# The filter lets userfaultfd(2) through (@system-service has it): the
	# executable's read-only mappings carry the userfaultfd write-protect
	# flag, so it is mapped a page at a time (internal/exepages).
	local ro_maps
	ro_maps=$(cexec cat /proc/$pid/smaps | awk -v exe=/usr/bin/$NAME '
		/^[0-9a-f]+-[0-9a-f]+ / { m = ($6 == exe && substr($2, 2, 1) == "-") }
		m && /^VmFlags:/ { n++; if ($0 ~ / uw( |$)/) u++ }
		END { print u + 0, n + 0 }')
	[ "${ro_maps#* }" -ge 2 ] && [ "${ro_maps% *}" = "${ro_maps#* }" ] ||
		die "read-only mappings of /usr/bin/$NAME with the userfaultfd flag, and in all: $ro_maps"
	ok "under the unit's filter the executable is mapped a page at a time (${ro_maps% *} read-only mappings registered)"
	# The sandbox: / read-only (ProtectSystem=strict), private /tmp, no /home.
	local mi
	mi=$(cexec cat /proc/$pid/mountinfo)
	awk '$5 == "/" { print $6 }' <<<"$mi" | grep -q '^ro' || die "/ is not read-only in the unit's namespace"
	ok "/ is read-only for the unit"
	awk '$5 == "/tmp" { found = 1 } END { exit !found }' <<<"$mi" || die "no private /tmp"
	ok "the unit has a private /tmp"
	cexec nsenter -t "$pid" -m test -w /etc && die "/etc is writable in the unit's namespace" || true
	ok "/etc is not writable in the unit's namespace"

	# Scrape from the host.
	local body="" i
	for i in $(seq 1 100); do
		body=$(curl -fsS "http://127.0.0.1:$port/metrics" 2>/dev/null || true)
		grep -q '^azurelinux_probe_collector_success' <<<"$body" && break
		sleep 0.2
	done
	grep -q '^azurelinux_probe_collector_success' <<<"$body" || die "no metrics on 127.0.0.1:$port"
	ok "scraped http://127.0.0.1:$port/metrics from the host"
	grep '^azurelinux_probe_collector_success' <<<"$body" | sed 's/^/  unit: /'
	# Every collector that succeeds as root outside the sandbox must succeed
	# in the unit.
	cexec /usr/bin/$NAME facts --format=json --log.level=error --config.file=/etc/$NAME/config.yml > "$work/root-facts.json" || true
	local c good
	good=$(python3 -c 'import json,sys; print(" ".join(c["name"] for c in json.load(open(sys.argv[1]))["collectors"] if c["success"]))' "$work/root-facts.json")
	[ -n "$good" ] || die "no collector succeeded as root in the container"
	# (Poll: a slow collector's first refresh may still be running.)
	local missing
	for i in $(seq 1 60); do
		missing=""
		for c in $good; do
			grep -qx "azurelinux_probe_collector_success{collector=\"$c\"} 1" <<<"$body" || missing+=" $c"
		done
		[ -z "$missing" ] && break
		sleep 0.5
		body=$(curl -fsS "http://127.0.0.1:$port/metrics" 2>/dev/null || true)
	done
	[ -n "$missing" ] && cexec journalctl -u $NAME --no-pager -o cat | grep 'collector failed' | tail -5 >&2
	[ -z "$missing" ] || die "collectors that work as root fail in the unit:$missing
$(grep '^azurelinux_probe_collector_success' <<<"$body")
$(cexec journalctl -u $NAME --no-pager -o cat | grep 'collector failed' | tail -10)"
	ok "collectors that work as root work in the unit: $good"
	# And the sandbox hides nothing from them: the unit serves the same fact
	# series (names and labels) as root does without a sandbox.
	cexec /usr/bin/$NAME facts --format=prometheus --log.level=error --config.file=/etc/$NAME/config.yml > "$work/root-facts.prom" || true
	# (The daemon's own check and baseline series are compared below.)
	series() { grep -E '^azurelinux_' | grep -Ev '^azurelinux_(probe|checks?|baseline)_' | sed -E 's/ [^ ]+$//' | sort -u; }
	# Not readable by the unit, by design (docs/packaging.md): the
	# net.core.bpf_jit_* sysctls open only for uid 0 or CAP_NET_ADMIN, and
	# the network program types load only with CAP_NET_ADMIN or
	# CAP_SYS_ADMIN, so their feature probes are inconclusive in the unit.
	local by_design='^azurelinux_ebpf_jit_(harden|kallsyms|limit_bytes)$|^azurelinux_ebpf_(program_type_supported|feature_probe_inconclusive)[{](kind="program",)?type="(sched_cls|xdp|cgroup_sock|cgroup_sock_addr|netfilter)"[}]$'
	local diff_out
	diff_out=$(diff <(series < "$work/root-facts.prom" | grep -Ev "$by_design") <(series <<<"$body" | grep -Ev "$by_design") || true)
	[ -z "$diff_out" ] || die "the unit's facts differ from root's (< root only, > unit only):
$diff_out"
	ok "the unit serves the same $(series <<<"$body" | wc -l) fact series as root"
	# Every compatibility check that passes as root passes in the unit (the
	# container is no Azure Linux: many fail in both).
	cexec /usr/bin/$NAME check --format=json --log.level=error --config.file=/etc/$NAME/config.yml > "$work/root-checks.json" || true
	local passed failed_in_unit=""
	passed=$(python3 -c 'import json,sys; print(" ".join(c["category"] + "/" + c["name"] for c in json.load(open(sys.argv[1]))["checks"] if c["pass"]))' "$work/root-checks.json")
	for c in $passed; do
		grep -qx "azurelinux_check_status{category=\"${c%%/*}\",check=\"${c#*/}\"} 1" <<<"$body" ||
			failed_in_unit+=" $c"
	done
	[ -z "$failed_in_unit" ] || die "checks that pass as root fail in the unit:$failed_in_unit"
	ok "the $(wc -w <<<"$passed") checks that pass as root pass in the unit"
	grep -qx "azurelinux_kernel_module_loaded{module=\"$mod\"} 1" <<<"$body" ||
		die "the unit did not read /usr/lib/modules/$release/modules.builtin ($mod)"
	ok "the unit reads /usr/lib/modules/$release/modules.builtin ($mod built in)"
	grep -q '^azurelinux_ebpf_programs_loaded{' <<<"$body" || die "no eBPF inventory from the unit (iterators)"
	ok "the unit counts eBPF programs without CAP_SYS_ADMIN"

	# eBPF under the sandbox: GET_NEXT_ID (CAP_SYS_ADMIN) fails, program
	# and map loads (CAP_BPF, CAP_PERFMON) work.
	local want_unit="prog_get_next_id 1
map_get_next_id 1
prog_load_socket_filter 0
prog_load_kprobe 0
map_create_array 0"
	for v in unit; do
		cexec systemctl start bpfcheck-$v.service
		out=$(cexec journalctl -u bpfcheck-$v.service -o cat --no-pager | grep -E '^[a-z_]+ [0-9]+$')
		local want_v=want_$v
		assert_eq "bpf() under the unit's sandbox ($v; call errno)" "$(tr '\n' ' ' <<<"$out")" "$(tr '\n' ' ' <<<"${!want_v}")"
	done

	# The watchdog: the probe pings at WatchdogSec/2.
	local ts0 ts
	ts0=$(prop WatchdogTimestampMonotonic)
	for i in $(seq 1 40); do
		ts=$(prop WatchdogTimestampMonotonic)
		[ "$ts" != "$ts0" ] && break
		sleep 0.5
	done
	[ "$ts" != "$ts0" ] || die "no watchdog ping within 20s"
	ok "watchdog pinged (WatchdogTimestampMonotonic $ts0 -> $ts)"
	assert_eq "NRestarts" "$(prop NRestarts)" 0

	cexec systemctl reload $NAME.service
	for i in $(seq 1 50); do
		grep -q 'configuration reloaded' <<<"$(cexec journalctl -u $NAME --no-pager -o cat)" && break
		sleep 0.2
	done
	grep -q 'configuration reloaded' <<<"$(cexec journalctl -u $NAME --no-pager -o cat)" || die "reload not logged"
	assert_eq "after reload" "$(prop ActiveState)/$(prop SubState)" active/running
	reload_metric() {
		curl -fsS "http://127.0.0.1:$port/metrics" | awk '$1 == "azurelinux_probe_config_last_reload_successful" { print $2 }'
	}
	assert_eq "azurelinux_probe_config_last_reload_successful after a good reload" "$(reload_metric)" 1
	# A broken config.yml: systemctl reload fails visibly (ExecReload= runs
	# check-config first, which names the file, line and key), the daemon
	# keeps running.
	# (Written from inside: the container's root is not $r's view.)
	cexec cp /etc/$NAME/config.yml /root/good-config.yml
	cexec sh -c "printf 'collectors:\\n  userland:\\n    exce: sandbox\\n' > /etc/$NAME/config.yml"
	if out=$(cexec systemctl reload $NAME.service 2>&1); then die "systemctl reload succeeded with a broken config.yml"; fi
	ok "systemctl reload fails on a broken config.yml"
	local want_msg='/etc/azurelinux-probe/config.yml:3:5: collectors.userland: unknown key "exce" (did you mean "exec"?)'
	for i in $(seq 1 50); do
		grep -qF "$want_msg" <<<"$(cexec journalctl -u $NAME --no-pager -o cat)" && break
		sleep 0.2
	done
	grep -qF "$want_msg" <<<"$(cexec journalctl -u $NAME --no-pager -o cat)" ||
		die "check-config's message not in the journal: $out; $(cexec journalctl -u $NAME --no-pager -o cat | tail -5)"
	ok "the journal names the file, line, column and the nearest key"
	assert_eq "after a refused reload" "$(prop ActiveState)/$(prop SubState)" active/running
	# A SIGHUP that bypasses check-config: the daemon keeps the running
	# configuration and says so in the metric the alert reads.
	cexec systemctl kill -s HUP --kill-whom=main $NAME.service
	for i in $(seq 1 50); do
		[ "$(reload_metric)" = 0 ] && break
		sleep 0.2
	done
	assert_eq "azurelinux_probe_config_last_reload_successful after a broken SIGHUP" "$(reload_metric)" 0
	cexec cp /root/good-config.yml /etc/$NAME/config.yml
	cexec systemctl reload $NAME.service || die "reload of the restored config failed"
	for i in $(seq 1 50); do
		[ "$(reload_metric)" = 1 ] && break
		sleep 0.2
	done
	assert_eq "azurelinux_probe_config_last_reload_successful after the fix" "$(reload_metric)" 1
	# The package's %postun on upgrade ($1 = 1) restarts the running service.
	cexec sh -e /root/postun.sh 1
	assert_eq "after %postun (upgrade)" "$(prop ActiveState)/$(prop SubState)" active/running
	[ "$(prop MainPID)" != "$pid" ] || die "%postun did not restart the service"
	ok "%postun restarted the service (pid $pid -> $(prop MainPID))"
	# The package's %preun on erase ($1 = 0): disabled and stopped cleanly.
	cexec sh -e /root/preun.sh 0
	assert_eq "after %preun" "$(prop ActiveState)/$(prop Result)" inactive/success
	assert_eq "enabled after %preun" "$(cexec systemctl is-enabled $NAME.service || true)" disabled
	grep -q 'shutting down' <<<"$(cexec journalctl -u $NAME --no-pager -o cat)" || die "no clean shutdown logged"
	ok "clean shutdown logged"
	"$SC" stop "$ct_pid"
	ct_pid=""
}

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(lint unit install signing repro upgrade remove container)
for s in "${steps[@]}"; do
	run_step "$s"
done
echo "== package-test passed: exposure $(cat "$work/exposure" 2>/dev/null || echo n/a), reproducible binary sha256 $(cat "$work/repro-hash" 2>/dev/null || echo n/a)"
for s in "${steps[@]}"; do
	printf '  %-10s %6ss\n' "$s" "${took[$s]}"
done
