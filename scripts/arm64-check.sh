#!/usr/bin/env bash
# arm64-check.sh: cross-build the probe for arm64 (Azure's Cobalt VMs run
# Azure Linux on aarch64) and run `facts` and `check` of the arm64 fixture
# tree under qemu-user, comparing `facts` with the tree's golden output (the
# one the x86_64 golden test writes) and `check` with the x86_64 build's, so
# that an arm64-only break shows in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=azl4-arm64-cobalt
root=$PWD/collectors/testdata/trees/$tree
golden=collectors/testdata/golden/$tree.prom
qemu=$(command -v qemu-aarch64-static || command -v qemu-aarch64) || { echo "arm64-check: qemu-aarch64 not installed (package qemu-user-static)" >&2; exit 1; }
work=$(mktemp -d)
trap 'kill "${imds:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

CGO_ENABLED=0 GOARCH=arm64 ${GO:-go} build -trimpath -o "$work/probe-arm64" ./cmd/azurelinux-probe
CGO_ENABLED=0 ${GO:-go} build -trimpath -o "$work/probe-amd64" ./cmd/azurelinux-probe
[ -x "$work/probe-amd64" ]
file "$work/probe-arm64" 2>/dev/null | grep -q aarch64 || { echo "arm64-check: $work/probe-arm64 is not an arm64 binary" >&2; exit 1; }

# The instance metadata the golden test serves for this tree, on loopback.
mkdir -p "$work/imds/$tree/metadata" "$work/checks.d"
cp "collectors/testdata/imds/$tree.json" "$work/imds/$tree/metadata/instance"
if [ -f "collectors/testdata/imds/$tree.scheduledevents.json" ]; then
	cp "collectors/testdata/imds/$tree.scheduledevents.json" "$work/imds/$tree/metadata/scheduledevents"
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$work/imds" >/dev/null 2>&1 &
imds=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/$tree/metadata/instance" >/dev/null && break; sleep 0.1; done
printf 'collectors:\n  azure:\n    endpoint: http://127.0.0.1:%s/%s/metadata/instance?api-version=2023-07-01\n    tags: [env]\n' "$port" "$tree" > "$work/config.yml"

collectors=$("$work/probe-amd64" --help 2>&1 | grep -o -- '--\[no-\]collector\.[a-z_]*' | sed 's/\[no-\]//' | grep -v -e disable -e '\.$' | sort -u)
# shellcheck disable=SC2086
"$qemu" "$work/probe-arm64" facts --format=prometheus --log.level=error --path.rootfs="$root" \
	--config.file="$work/config.yml" $collectors > "$work/facts.prom" || true
# The eBPF collectors (ebpf, ebpf_links) refresh in a child process of the
# probe's own binary, which qemu-user cannot start without binfmt_misc: their
# facts are left out of the comparison, everything else must be byte-identical.
filter() { grep -v -e 'azurelinux_ebpf_' -e 'collector="ebpf"' -e 'collector="ebpf_links"' "$1"; }
if ! diff -u <(filter "$golden") <(filter "$work/facts.prom"); then
	echo "arm64-check: facts of $tree under qemu-aarch64 differ from $golden" >&2
	exit 1
fi
for arch in arm64 amd64; do
	run=()
	[ "$arch" = arm64 ] && run=("$qemu")
	code=0
	"${run[@]}" "$work/probe-$arch" check --format=json --log.level=error --path.rootfs="$root" --no-collector.azure --no-collector.ebpf --no-collector.ebpf_links \
		--checks.dir="$work/checks.d" > "$work/check-$arch.json" 2> "$work/check-$arch.err" || code=$?
	[ -s "$work/check-$arch.json" ] || { cat "$work/check-$arch.err" >&2; exit 1; }
	echo "$code" > "$work/check-$arch.code"
done
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
def load(a):
    d = json.load(open(f"{w}/check-{a}.json"))
    return {c["name"]: (c["pass"], c["reason"]) for c in d["checks"]}, open(f"{w}/check-{a}.code").read().strip()
arm, arm_code = load("arm64")
x86, x86_code = load("amd64")
if arm != x86 or arm_code != x86_code:
    for k in sorted(set(arm) | set(x86)):
        if arm.get(k) != x86.get(k):
            print(f"  {k}: arm64 {arm.get(k)} amd64 {x86.get(k)}")
    sys.exit(f"arm64-check: check differs between arm64 (exit {arm_code}) and amd64 (exit {x86_code})")
print(f"arm64-check: facts match {len(open(w + '/facts.prom').read().splitlines())} golden lines; check: {sum(p for p, _ in arm.values())}/{len(arm)} pass, exit {arm_code}, as on amd64")
PY
