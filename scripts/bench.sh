#!/usr/bin/env bash
# bench.sh: `make bench`. In one run on loopback, measures the probe with
# its default collectors against node_exporter with its defaults and against
# a static server that serves a byte copy of the probe's own /metrics (the
# ceiling), in interleaved rounds, plain and gzip, with wrk at 8 connections;
# then peak RSS (of all three), CPU per 1,000 scrapes, a soak of 64 scrapers,
# where the probe's resident memory goes (/proc/PID/smaps), idle CPU and
# start-up times. Prints a table and writes docs/benchmarks.md.
#
# ROUNDS (5), DURATION (5s per wrk run), SOAK (60 s) and IDLE (60 s) can be
# set in the environment for a quicker look, PROBE_ADDR, NODE_ADDR and
# STATIC_ADDR to move the servers.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
SOAK=${SOAK:-60}
IDLE=${IDLE:-60}
CONNS=8
# The addresses can be moved where several people share one machine.
PROBE_ADDR=${PROBE_ADDR:-127.0.0.1:19847}
NODE_ADDR=${NODE_ADDR:-127.0.0.1:19100}
STATIC_ADDR=${STATIC_ADDR:-127.0.0.1:19848}
OUT=${OUT:-docs/benchmarks.md}

scripts/need-tools.sh wrk:wrk:wrk \
	prometheus-node-exporter:prometheus-node-exporter:golang-github-prometheus-node-exporter \
	curl:curl:curl
make -s build
go build -o build/bench-static ./bench/static

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

tck=$(getconf CLK_TCK)
now_ms() { echo $(($(date +%s%N) / 1000000)); }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
# smaps_kb pid file perms [field]: resident kB (or the kB of field, e.g.
# Referenced) of the mappings of file with perms (r-xp code, r--p read-only
# data, rw-p data) in /proc/pid/smaps.
smaps_kb() {
	awk -v f="$2" -v p="$3" -v k="${4:-Rss}:" '/^[0-9a-f]+-[0-9a-f]+ / {in_ = ($6 == f && $2 == p)} in_ && $1 == k {n += $2} END {print n + 0}' "/proc/$1/smaps"
}
gauge() { # url metric: a metric's value from an exposition
	curl -sf "$1" | awk -v m="$2" '$1 == m {printf "%.0f", $2}'
}
wait_http() { # url: wait until it answers 200 (the servers log nothing useful to wait on)
	for _ in $(seq 1 2000); do
		curl -sf -o /dev/null "$1" && return 0
	done
	echo "bench: $1 never answered" >&2
	return 1
}

# --- start-up: listening, ready (every first refresh done) and first snapshot --
start_probe() { # logfile
	build/azurelinux-probe --web.listen-address=$PROBE_ADDR --log.level=info >"$1" 2>&1 &
	probe=$!
	pids+=("$probe")
}
t0=$(now_ms)
start_probe "$work/probe.log"
wait_http "http://$PROBE_ADDR/-/healthy"
listen_ms=$(($(now_ms) - t0))
wait_http "http://$PROBE_ADDR/-/ready"
ready_ms=$(($(now_ms) - t0))
for _ in $(seq 1 2000); do grep -q 'first snapshot complete' "$work/probe.log" && break; done
first_snapshot=$(sed -n 's/.*first snapshot complete.* elapsed=\([^ ]*\).*/\1/p' "$work/probe.log" | head -1)
sleep 2 # the probe's start-up settles (the checks' first evaluation), not a synchronisation
probe_start_hwm_kb=$(status_kb "$probe" VmHWM)
probe_start_rss_kb=$(status_kb "$probe" VmRSS)

prometheus-node-exporter --web.listen-address=$NODE_ADDR --log.level=warn >"$work/node.log" 2>&1 &
node=$!
pids+=("$node")
wait_http "http://$NODE_ADDR/metrics"
node_version=$(prometheus-node-exporter --version 2>&1 | head -1)

curl -sf "http://$PROBE_ADDR/metrics" >"$work/payload"
payload_bytes=$(wc -c <"$work/payload")
payload_gzip_bytes=$(curl -sf -H 'Accept-Encoding: gzip' "http://$PROBE_ADDR/metrics" | wc -c)
node_bytes=$(curl -sf "http://$NODE_ADDR/metrics" | wc -c)
build/bench-static -listen $STATIC_ADDR -file "$work/payload" >"$work/static.log" 2>&1 &
static=$!
pids+=("$static")
wait_http "http://$STATIC_ADDR/metrics"

# --- interleaved rounds -----------------------------------------------------
to_ms() { # wrk latency like 208.00us, 1.25ms, 1.02s
	awk -v v="$1" 'BEGIN {
		if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
		else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
		else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
		else printf "%s", v }'
}
results="$work/results" # target mode round rps p50 p99 cpu_per_1000 errors
: >"$results"
run_wrk() { # target pid url mode round
	local target=$1 pid=$2 url=$3 mode=$4 round=$5 hdr=()
	[ "$mode" = gzip ] && hdr=(-H 'Accept-Encoding: gzip')
	local c0 c1 out
	c0=$(cpu_ticks "$pid")
	out=$(wrk -t2 -c$CONNS -d"$DURATION" --latency "${hdr[@]}" "$url")
	c1=$(cpu_ticks "$pid")
	local rps reqs p50 p99 errs
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	reqs=$(awk '/requests in/ {print $1}' <<<"$out")
	p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
	p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
	errs=$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10} END {print n + 0}' <<<"$out")
	local cpu
	cpu=$(awk -v d=$((c1 - c0)) -v t="$tck" -v r="$reqs" 'BEGIN {printf "%.4f", (d / t) / r * 1000}')
	echo "$target $mode $round $rps $p50 $p99 $cpu $errs" >>"$results"
}
echo "bench: $ROUNDS rounds of ${DURATION} per target and mode, $CONNS connections" >&2
for round in $(seq 1 "$ROUNDS"); do
	for mode in plain gzip; do
		run_wrk probe "$probe" "http://$PROBE_ADDR/metrics" $mode "$round"
		run_wrk node_exporter "$node" "http://$NODE_ADDR/metrics" $mode "$round"
		run_wrk static "$static" "http://$STATIC_ADDR/metrics" $mode "$round"
	done
	echo "bench: round $round done" >&2
done
probe_hwm_kb=$(status_kb "$probe" VmHWM)
node_hwm_kb=$(status_kb "$node" VmHWM)
static_hwm_kb=$(status_kb "$static" VmHWM)

median() { # target mode column
	awk -v t="$1" -v m="$2" -v c="$3" '$1 == t && $2 == m {print $c}' "$results" | sort -g |
		awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
total_errors=$(awk '{n += $8} END {print n + 0}' "$results")

# --- soak: 64 scrapers, RSS before and after ---------------------------------
rss_before=$(status_kb "$probe" VmRSS)
soak_out=$(wrk -t2 -c64 -d"${SOAK}s" -H 'Accept-Encoding: gzip' "http://$PROBE_ADDR/metrics")
rss_after=$(status_kb "$probe" VmRSS)
anon_after=$(status_kb "$probe" RssAnon)
file_after=$(status_kb "$probe" RssFile)
soak_reqs=$(awk '/requests in/ {print $1}' <<<"$soak_out")
soak_errors=$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10} END {print n + 0}' <<<"$soak_out")
probe_hwm_kb=$(status_kb "$probe" VmHWM)
exe=$(readlink -f build/azurelinux-probe)
code_kb=$(smaps_kb "$probe" "$exe" r-xp)
rodata_kb=$(smaps_kb "$probe" "$exe" r--p)
data_kb=$(smaps_kb "$probe" "$exe" rw-p)
murl="http://$PROBE_ADDR/metrics"
heap_kb=$(($(gauge "$murl" go_memstats_heap_inuse_bytes) / 1024))
stack_kb=$(($(gauge "$murl" go_memstats_stack_inuse_bytes) / 1024))
idle_heap_kb=$((($(gauge "$murl" go_memstats_heap_idle_bytes) - $(gauge "$murl" go_memstats_heap_released_bytes)) / 1024))

# --- working set: which mapped pages of the executable serving touches --------
# Writing 1 to clear_refs (proc(5)) clears the accessed bit of every mapped
# page; Referenced in smaps is then what the next $WS s of 8 scrapers (and
# the refreshes meanwhile) touched. What stays mapped untouched was touched
# once (the first collection, the first render) or by a refresh that did not
# recur in the window.
WS=${WS:-10}
echo 1 >"/proc/$probe/clear_refs"
wrk -t2 -c$CONNS -d"${WS}s" -H 'Accept-Encoding: gzip' "http://$PROBE_ADDR/metrics" >/dev/null
ws_code_rss=$(smaps_kb "$probe" "$exe" r-xp)
ws_rodata_rss=$(smaps_kb "$probe" "$exe" r--p)
ws_code_ref=$(smaps_kb "$probe" "$exe" r-xp Referenced)
ws_rodata_ref=$(smaps_kb "$probe" "$exe" r--p Referenced)

# --- idle CPU: a fresh probe at its default intervals --------------------------
kill "$probe"
wait "$probe" 2>/dev/null || true
start_probe "$work/probe-idle.log"
wait_http "http://$PROBE_ADDR/-/ready"
i0=$(cpu_ticks "$probe")
sleep "$IDLE" # the measurement window itself, not a synchronisation
i1=$(cpu_ticks "$probe")
idle_pct=$(awk -v d=$((i1 - i0)) -v t="$tck" -v s="$IDLE" 'BEGIN {printf "%.3f", (d / t) / s * 100}')

# --- serving alone: no collector, no checks, the same load --------------------
# What the collectors and the checks add to the peak: the same binary with
# none of them, after the same 8-scraper run and a shorter 64-scraper soak.
kill "$probe"
wait "$probe" 2>/dev/null || true
build/azurelinux-probe --web.listen-address=$PROBE_ADDR --log.level=warn \
	--collector.disable-defaults --no-checks.embedded >"$work/probe-bare.log" 2>&1 &
probe=$!
pids+=("$probe")
wait_http "http://$PROBE_ADDR/-/ready"
bare_start_hwm_kb=$(status_kb "$probe" VmHWM)
wrk -t2 -c$CONNS -d"$DURATION" "http://$PROBE_ADDR/metrics" >/dev/null
wrk -t2 -c64 -d"${BARE_SOAK:-15}s" -H 'Accept-Encoding: gzip' "http://$PROBE_ADDR/metrics" >/dev/null
bare_hwm_kb=$(status_kb "$probe" VmHWM)
bare_anon_kb=$(status_kb "$probe" RssAnon)
bare_file_kb=$(status_kb "$probe" RssFile)

# --- scale: Go benchmarks of refresh and scrape cost ----------------------------
# As root, the eBPF inventory benchmark loads a few hundred programs itself.
echo "bench: scale benchmarks (go test -bench)" >&2
scale=$(go test -run '^$' -bench 'HypervRefresh|GPURefresh|SystemdRefresh|EBPFInventory|Scrape|Render' \
	-benchtime=50x ./collectors ./agent 2>&1 | grep -E '^Benchmark' | sed -E 's/-[0-9]+ +/ /' |
	awk '{printf "| %s | %s |", $1, $3}
		{for (i = 5; i < NF; i += 2) printf " %s %s", $i, $(i + 1); print ""}')

# --- report -------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
mb() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
table="$work/table"
{
	echo "| target | encoding | requests/s | p50 latency | p99 latency | CPU s per 1,000 scrapes | failed requests |"
	echo "|---|---|---:|---:|---:|---:|---:|"
	for t in probe node_exporter static; do
		for m in plain gzip; do
			errs=$(awk -v t=$t -v m=$m '$1 == t && $2 == m {n += $8} END {print n + 0}' "$results")
			printf '| %s | %s | %.0f | %s ms | %s ms | %s | %s |\n' "$t" "$m" "$(median $t $m 4)" \
				"$(median $t $m 5)" "$(median $t $m 6)" "$(median $t $m 7)" "$errs"
		done
	done
} >"$table"
pp=$(median probe plain 4) pg=$(median probe gzip 4)
np=$(median node_exporter plain 4) ng=$(median node_exporter gzip 4)
sp=$(median static plain 4) sg=$(median static gzip 4)
probe_p99_max=$(awk -v a="$(median probe plain 6)" -v b="$(median probe gzip 6)" 'BEGIN {print (a > b) ? a : b}')
pass() { if awk "BEGIN {exit !($1)}"; then echo pass; else echo FAIL; fi; }

cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
report=$(
	cat <<EOF
# Benchmarks

Measured by \`make bench\` (scripts/bench.sh) on $(date -u +%Y-%m-%d): $(nproc) cores ($cpu_model),
$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) memory, Linux $(uname -r), $(go version | awk '{print $3}'),
azurelinux-probe $(cat VERSION) with its default collectors, $node_version with its defaults.
All three servers and wrk share the same machine and loopback; rounds are interleaved and the
figures are medians of $ROUNDS rounds of $DURATION each with $CONNS connections. The machine is noisy:
the ratios measured in the same run are the figures that count.

Payloads: probe $payload_bytes bytes ($payload_gzip_bytes gzip), node_exporter $node_bytes bytes; the static
server serves a byte copy of the probe's payload (and a gzip copy made once at start).

$(cat "$table")

| ratio | plain | gzip |
|---|---:|---:|
| probe / node_exporter throughput | $(ratio "$pp" "$np") | $(ratio "$pg" "$ng") |
| probe / static throughput | $(ratio "$pp" "$sp") | $(ratio "$pg" "$sg") |

| target (issues #9 and #13) | measured | |
|---|---|---|
| throughput ≥ 1.0 × static, plain and gzip (issues #13 and #18) | $(ratio "$pp" "$sp") and $(ratio "$pg" "$sg") | $(pass "$pp / $sp >= 1.0 && $pg / $sg >= 1.0") |
| p99 latency ≤ 2 ms at $CONNS scrapers | $probe_p99_max ms (worse of plain and gzip) | $(pass "$probe_p99_max <= 2") |
| peak RSS ≤ 15 MB (issue #13) | $(mb "$probe_hwm_kb") MB ($probe_hwm_kb kB; node_exporter $(mb "$node_hwm_kb") MB, static server $(mb "$static_hwm_kb") MB) | $(pass "$probe_hwm_kb <= 15360") |
| no RSS growth over a ${SOAK} s soak of 64 scrapers, zero failures | RSS $rss_before kB before, $rss_after kB after; $soak_reqs requests, $soak_errors failed | $(pass "$soak_errors == 0 && $rss_after <= $rss_before + 2048") |
| idle CPU < 0.5 % of one core over ${IDLE} s | $idle_pct % | $(pass "$idle_pct < 0.5") |
| listening within 200 ms of start | $listen_ms ms (to the first /-/healthy 200, curl polling) | $(pass "$listen_ms <= 200") |
| first complete snapshot within 2 s | $first_snapshot (from the probe's log); /-/ready 200 (every first refresh done) after $ready_ms ms | $(pass "$ready_ms <= 2000") |

Failed requests over all rounds: $total_errors.

## Resident memory

Peak RSS (VmHWM) over the whole run: probe $(mb "$probe_hwm_kb") MB, node_exporter $(mb "$node_hwm_kb") MB,
static server $(mb "$static_hwm_kb") MB (a bare net/http server of the same bytes: the floor of a Go server under this
load). The probe's peak was $(mb "$probe_start_hwm_kb") MB by the end of its start-up, the first refresh of every
collector at once and the first evaluation of the checks (its RSS then $(mb "$probe_start_rss_kb") MB), and $(mb "$probe_hwm_kb") MB
after serving $CONNS and then 64 scrapers flat out.

Where the probe's $(mb "$rss_after") MB were after the soak (/proc/PID/smaps, the probe's own go_memstats):

| part | kB | what it is |
|---|---:|---|
| executable code (r-xp) | $code_kb | the functions serving ran since start-up: net/http, gzip, the scheduler, the collectors' refreshes, the runtime |
| executable read-only data (r--p) | $rodata_kb | type descriptors and the pclntab, read by the garbage collector (stack maps, type info of heap objects) and by stack growth |
| executable data (rw-p) | $data_kb | package variables and the runtime's static state (copy-on-write, so counted anonymous once written) |
| Go heap in use | $heap_kb | cached snapshots and bodies, compiled regexps, connection buffers, garbage between collections |
| Go heap free, not returned | $idle_heap_kb | kept for reuse; the scavenger returns it over minutes |
| goroutine stacks | $stack_kb | scheduler, collectors, one per connection |

Anonymous $anon_after kB, file-backed $file_after kB in all. On a read fault in a file mapping the kernel
maps every page of the file in the page cache within 64 KiB of the faulting one (fault_around_bytes,
mm/memory.c do_fault_around), so a few hundred scattered reads of a 33 MB binary keep megabytes of it
mapped. The probe turns that off for its own code and read-only data from the init of
internal/exepages on, among the first of its 215 package inits: a mapping registered with a
userfaultfd for write-protect faults is mapped a page at a time (internal/exepages/pagebypage.go says
why and how). Measured on 2026-12-01 beside the previous commit (fe6570e), which had fault-around:
at main.main, before any probe code runs (the process stopped at its first madvise, /proc/PID/pagemap
against the ELF sections), 7.6 MB of the binary mapped instead of 13.4 MB (2.9 instead of 7.5 MB of
code, 1.7 instead of 2.9 MB of pclntab; the 2.5 MB of read-only data are read whole by the runtime's
start-up, itabsinit and typelinks, either way); \`azurelinux-probe --version\` peaks at 9.9 MB instead of
16.0 MB; the daemon's first scrape maps 2.6 MB of the binary instead of 4.9 MB; and its start-up peak
is 11.2 MB instead of 18.3 MB. The daemon also unmaps its executable's clean pages (internal/exepages
Release) when it starts, before its collectors start and after their first snapshots, so only what
serving touches since then is counted; those pages stay in the page cache, shared and reclaimable. The
rpm database, the eBPF collector's BTF and programs, and the userland tools are read or run in child
processes.

What of the executable serving uses: after the soak, its accessed bits cleared (\`/proc/PID/clear_refs\`),
${WS} s more of $CONNS gzip scrapers touched $ws_code_ref kB of the $ws_code_rss kB of code mapped and
$ws_rodata_ref kB of the $ws_rodata_rss kB of read-only data (smaps Referenced): the rest was touched
once (the first collection and render, a refresh that did not recur in those ${WS} s).

The heap is held near the garbage collector's default goal by the soft memory limit
(\`--runtime.memory-limit\`, 13 MiB; the runtime counts about 6.5 MB of its own metadata against it,
1.4 MB of it the heap profiler's bucket table, which turning sampling off at init maps all the same:
internal/heapprofile says why; little of it is resident). Measured on 2026-12-01, 8 s of wrk at 8 and then 64
gzip scrapers against three daemons side by side: 1.06, 1.26 and 1.62 collections per 1,000 scrapes
at 8 scrapers with a limit of 14 MiB, 13 MiB and 12.5 MiB, 1.19, 2.69 and 4.76 at 64, with the same
throughput at 14 and 13 MiB and a quarter less at 12.5 MiB; peak RSS 14.7, 13.6 and 13.3 MB.

Serving alone: the same binary with no collector and no checks (\`--collector.disable-defaults
--no-checks.embedded\`), after the same $CONNS-scraper run and a ${BARE_SOAK:-15} s soak of 64, peaked at
$(mb "$bare_hwm_kb") MB ($(mb "$bare_start_hwm_kb") MB by the end of its start-up; $bare_anon_kb kB anonymous, $bare_file_kb kB
file-backed). The collectors and the checks thus add $(awk -v a="$probe_hwm_kb" -v b="$bare_hwm_kb" 'BEGIN {printf "%.1f", (a - b) / 1024}') MB to the peak; the rest is this binary
serving this load, where the static server, a binary a quarter the size touching the same net/http code,
peaked at $(mb "$static_hwm_kb") MB.

## Scale

Go benchmarks (\`go test -bench\`, 50 iterations each) of how a refresh grows with the host, and
what a scrape of the cached body costs whatever the refresh behind it cost. Refresh figures include
every syscall against the test tree or bus; allocations are the steadier measure on a noisy machine.

| benchmark | time per op | other figures per op |
|---|---:|---|
$scale
EOF
)
echo "$report"
echo "$report" >"$OUT"
# The kernel log benchmark writes to /dev/kmsg: root only.
if [ "$(id -u)" = 0 ]; then
	echo "bench: kernel log latency and CPU (TestKmsgLatencyAndCPU, about 3 minutes)" >&2
	kmsg_md=$(mktemp)
	AZURELINUX_PROBE_KMSG_BENCH=$kmsg_md go test -count=1 -timeout 10m -run '^TestKmsgLatencyAndCPU$' ./cmd/azurelinux-probe >&2
	{ echo; cat "$kmsg_md"; } >>"$OUT"
	rm -f "$kmsg_md"
fi
echo "bench: written to $OUT" >&2
