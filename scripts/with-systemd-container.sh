#!/usr/bin/env bash
# with-systemd-container.sh COMMAND...
#
# Boots the cached Debian 12 systemd container (systemd-container.sh), runs
# COMMAND with AZURELINUX_PROBE_TEST_SYSTEMD_PID set to the container init's
# host PID, and powers the container off afterwards, so that the systemd
# collector's live test reads a real systemd through its bus. Without root
# or the tools, COMMAND runs without the container and the live test skips;
# in CI (CI=true) that is a failure instead.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" -ne 0 ]; then
	echo "with-systemd-container: not root, no systemd container" >&2
	[ "${CI:-}" = true ] && exit 1
	exec "$@"
fi
for tool in debootstrap systemd-nspawn nsenter; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "with-systemd-container: $tool is missing (make tools installs it)" >&2
		[ "${CI:-}" = true ] && exit 1
		exec "$@"
	fi
done

start=$(date +%s.%N)
if ! "$here/systemd-container.sh" create || ! pid=$("$here/systemd-container.sh" start); then
	echo "with-systemd-container: could not boot the systemd container" >&2
	[ "${CI:-}" = true ] && exit 1
	exec "$@"
fi
echo "with-systemd-container: systemd up in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')s, init PID $pid" >&2
trap '"$here/systemd-container.sh" stop "$pid"' EXIT
AZURELINUX_PROBE_TEST_SYSTEMD_PID=$pid "$@"
