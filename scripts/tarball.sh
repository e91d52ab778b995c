#!/usr/bin/env bash
# tarball.sh OUTDIR
#
# Writes the sources of azurelinux-probe.spec into OUTDIR, as a distro
# builder needs them for an offline build:
#   azurelinux-probe-VERSION.tar.gz         the working tree's tracked and
#                                           untracked-but-not-ignored files,
#                                           plus REVISION (the git commit)
#   azurelinux-probe-VERSION-vendor.tar.gz  vendor/ from `go mod vendor`
#   azurelinux-probe.sysusers               read by %pre at spec parse time
#   azurelinux-probe-VERSION-bundled-provides.inc
#                                           the spec's Provides:
#                                           bundled(golang(MODULE)) = VERSION,
#                                           one per module that the vendored
#                                           tree links into the binary
# Archives are reproducible: sorted, owned by 0:0, mtime of the last commit.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: tarball.sh OUTDIR}
name=azurelinux-probe
version=$(cat VERSION)
spec_version=$(sed -n 's/^Version:[[:space:]]*//p' $name.spec)
if [ "$version" != "$spec_version" ]; then
	echo "tarball: VERSION ($version) differs from $name.spec's Version ($spec_version)" >&2
	exit 1
fi
revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
top=$stage/$name-$version
mkdir -p "$top"

# The working tree as git sees it (so an uncommitted change is built too).
git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do [ -e "$f" ] || [ -L "$f" ] && printf '%s\0' "$f"; done |
	tar --null -T - -cf - | tar -xf - -C "$top"
echo "$revision" > "$top/REVISION"

GOFLAGS=-mod=mod go mod vendor -o "$stage/vendor-root/vendor"

# The modules the binary links, as the spec's build sees them: `go list
# -deps` of the staged tree with the vendor tree just made (-mod=vendor, so
# the list is exactly what vendor/modules.txt provides), for each
# architecture the spec builds, with cgo as %gobuild uses it. go mod vendor
# also vendors modules the binary never links (other GOOS, tests); they
# are not declared: a Provides is a claim that the package contains it.
ln -s "$stage/vendor-root/vendor" "$top/vendor"
linked() {
	(cd "$top" && GOFLAGS=-mod=vendor GOOS=linux GOARCH=$1 CGO_ENABLED=1 GOTOOLCHAIN=local GOPROXY=off \
		go list -deps -f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}}{{end}}{{end}}' ./cmd/$name) | sort -u
}
linked amd64 > "$stage/modules-amd64"
linked arm64 > "$stage/modules-arm64"
rm "$top/vendor"
if ! cmp -s "$stage/modules-amd64" "$stage/modules-arm64"; then
	echo "tarball: the binary links different modules on x86_64 and aarch64; the spec needs %ifarch Provides:" >&2
	diff "$stage/modules-amd64" "$stage/modules-arm64" >&2 || true
	exit 1
fi
go run ./internal/cmd/pkgmeta provides < "$stage/modules-amd64" > "$stage/bundled-provides.inc"

tarflags=(--sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner --format=gnu)
tar "${tarflags[@]}" -C "$stage" -cf - "$name-$version" | gzip -n > "$out/$name-$version.tar.gz"
tar "${tarflags[@]}" -C "$stage/vendor-root" -cf - vendor | gzip -n > "$out/$name-$version-vendor.tar.gz"
install -m 0644 packaging/$name.sysusers "$out/$name.sysusers"
install -m 0644 "$stage/bundled-provides.inc" "$out/$name-$version-bundled-provides.inc"
echo "tarball: $(grep -c '^Provides: bundled(golang(' "$out/$name-$version-bundled-provides.inc") bundled(golang(...)) Provides" >&2
echo "$out/$name-$version.tar.gz $out/$name-$version-vendor.tar.gz"
