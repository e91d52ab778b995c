#!/bin/sh
# make demo: four probes serving the fixture trees of an Azure Linux 3.0
# VM, a 4.0 VM, a 4.0 VM whose GPU lost its driver and 4.0 bare metal, and
# a Prometheus scraping them; then the fleet report. Ctrl-C stops them all.
#
#   scripts/demo.sh [BIN]    (BIN: build/azurelinux-probe)
#
# Open the printed addresses: each probe's status page (/), Prometheus, and
# build/demo/report.html.
set -eu
BIN=${1:-build/azurelinux-probe}
PROMETHEUS=${PROMETHEUS:-prometheus}
DIR=build/demo
TREES="azl3 azl4-azure-gen2 azure-gpu-nodriver azl4-baremetal"
PORT=${DEMO_PORT:-19850} # probes on PORT.., Prometheus on PORT+9
rm -rf "$DIR" && mkdir -p "$DIR/checks.d"
pids=""
trap 'kill $pids 2>/dev/null || true' EXIT INT TERM
targets="" n=0
for tree in $TREES; do
	addr=127.0.0.1:$((PORT + n))
	# No azure collector: it would ask the real instance metadata service.
	"$BIN" --web.listen-address="$addr" --path.rootfs="$PWD/collectors/testdata/trees/$tree" \
		--no-collector.azure --checks.interval=5s --checks.timeout=5s --checks.dir="$DIR/checks.d" \
		--log.level=warn 2>"$DIR/$tree.log" &
	pids="$pids $!"
	targets="$targets${targets:+, }'$addr'"
	echo "probe $tree: http://$addr/"
	n=$((n + 1))
done
prom=127.0.0.1:$((PORT + 9))
cat >"$DIR/prometheus.yml" <<YML
global: {scrape_interval: 5s, evaluation_interval: 5s}
rule_files: ['$PWD/packaging/prometheus/azurelinux-probe.rules.yml']
scrape_configs:
  - job_name: azurelinux-probe
    static_configs: [{targets: [$targets]}]
YML
"$PROMETHEUS" --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/data" \
	--web.listen-address="$prom" --log.level=warn 2>"$DIR/prometheus.log" &
pids="$pids $!"
echo "prometheus: http://$prom/"
# Poll (with a deadline) until every probe's checks are in Prometheus.
i=0
until "$BIN" report --prometheus.url="http://$prom" --format=json --selector='{job="azurelinux-probe"}' 2>/dev/null |
	python3 -c 'import json,sys; m=json.load(sys.stdin); sys.exit(sum(len(c["hosts"]) for c in m["cohorts"]) != 4)' 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 60 ] || { echo "the probes' checks did not reach Prometheus in 60s; see $DIR/*.log" >&2; exit 1; }
	sleep 1
done
"$BIN" report --prometheus.url="http://$prom" --selector='{job="azurelinux-probe"}' --format=html >"$DIR/report.html" || true
"$BIN" report --prometheus.url="http://$prom" --selector='{job="azurelinux-probe"}' --format=markdown >"$DIR/report.md" || true
echo "report: $DIR/report.html (and $DIR/report.md); Ctrl-C stops the demo"
wait
