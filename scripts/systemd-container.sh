#!/usr/bin/env bash
# systemd-container.sh: a Debian 12 root with a real systemd, booted with
# systemd-nspawn, for tests that need systemd as PID 1 and its D-Bus (the
# systemd collector, the packaged unit). Root only.
#
#   systemd-container.sh create ROOT     debootstrap a minbase root with systemd and dbus
#                                        (idempotent; a finished root is reused)
#   systemd-container.sh start ROOT      boot it in the background and wait until systemd
#                                        is up; prints the container init's host PID
#   systemd-container.sh exec PID CMD..  run CMD inside the container (nsenter)
#   systemd-container.sh stop PID        power the container off and wait for it to end
#
# The system bus of a started container is /proc/PID/root/run/dbus/system_bus_socket.
# The default ROOT cache is /var/cache/azurelinux-probe-test/debian12-systemd.
# SYSTEMD_CONTAINER_NSPAWN_ARGS adds systemd-nspawn options to start (split on
# spaces), e.g. --capability=CAP_BPF,CAP_PERFMON for a unit that needs
# capabilities outside nspawn's default set.
set -euo pipefail

MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
die() { echo "systemd-container: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root"

create() {
	local root=$1
	[ -e "$root/.complete" ] && return 0
	mkdir -p "$(dirname "$root")"
	# One creator at a time: concurrent test runs share the cached root.
	exec 9>"$root.lock"
	flock 9
	[ -e "$root/.complete" ] && return 0
	rm -rf "$root"
	command -v debootstrap >/dev/null || die "debootstrap is not installed"
	command -v systemd-nspawn >/dev/null || die "systemd-nspawn is not installed (package systemd-container)"
	echo "systemd-container: debootstrap Debian 12 into $root (a few minutes, once)" >&2
	debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,procps,curl,ca-certificates \
		bookworm "$root" "$MIRROR" >&2
	# No getty on a console nobody reads; a quiet, quick boot.
	chroot "$root" systemctl mask console-getty.service getty@.service systemd-networkd-wait-online.service >/dev/null 2>&1 || true
	echo azlprobe-test > "$root/etc/hostname"
	touch "$root/.complete"
}

start() {
	local root=$1
	[ -e "$root/.complete" ] || die "$root is not a created root (run create first)"
	local log
	log=$(mktemp /tmp/systemd-container.XXXXXX.log)
	# --keep-unit and --register=no: no machined or host systemd is needed.
	# The host network is shared so that tests can scrape 127.0.0.1.
	# --read-only --volatile=overlay: the cached root stays as created (a
	# tmpfs overlay takes the writes) and nspawn takes only a shared lock on
	# it, so that concurrent test runs can boot it at the same time; a
	# writable boot locks the tree ("Directory tree ... is currently busy").
	# A machine name per boot keeps their /run/systemd/nspawn state apart.
	# shellcheck disable=SC2086
	systemd-nspawn -q -D "$root" --register=no --keep-unit -b \
		--read-only --volatile=overlay --machine="azlprobe-$$" \
		--console=passive ${SYSTEMD_CONTAINER_NSPAWN_ARGS:-} >"$log" 2>&1 </dev/null &
	local nspawn=$!
	local pid=""
	for _ in $(seq 1 300); do
		kill -0 "$nspawn" 2>/dev/null || { cat "$log" >&2; die "systemd-nspawn exited"; }
		pid=$(pgrep -P "$nspawn" -x systemd || true)
		[ -n "$pid" ] && break
		sleep 0.1
	done
	[ -n "$pid" ] || die "container init did not appear"
	# Wait for systemd to finish booting (degraded is still up). Until the
	# container's D-Bus is up, systemctl fails at once, so ask again.
	local state=""
	for _ in $(seq 1 600); do
		state=$(nsenter -t "$pid" -a systemctl is-system-running 2>/dev/null || true)
		case "$state" in
		running | degraded) echo "$pid"; return 0 ;;
		esac
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	cat "$log" >&2
	die "container systemd state is '$state'"
}

exec_in() {
	local pid=$1
	shift
	exec nsenter -t "$pid" -a "$@"
}

stop() {
	local pid=${1:?usage: stop PID}
	kill -0 "$pid" 2>/dev/null || return 0
	local nspawn
	nspawn=$(ps -o ppid= -p "$pid" | tr -d ' ')
	# SIGRTMIN+4 asks systemd for a clean poweroff.
	kill -s RTMIN+4 "$pid" 2>/dev/null || true
	for _ in $(seq 1 200); do
		kill -0 "$nspawn" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -9 "$nspawn" 2>/dev/null || true
}

cmd=${1:-}
shift || true
case "$cmd" in
create) create "${1:-/var/cache/azurelinux-probe-test/debian12-systemd}" ;;
start) start "${1:-/var/cache/azurelinux-probe-test/debian12-systemd}" ;;
exec) exec_in "$@" ;;
stop) stop "$1" ;;
*) die "usage: $0 create|start [ROOT] | exec PID CMD... | stop PID" ;;
esac
