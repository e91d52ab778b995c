#!/usr/bin/env bash
# with-kernel-fs.sh COMMAND...
#
# Runs COMMAND with securityfs mounted at /sys/kernel/security, tracefs at
# /sys/kernel/tracing and a bpf file system at /sys/fs/bpf, so that the live
# tests can compare the collectors with the real LSM list and lockdown mode
# and see the mounts a systemd host has. As root, the mounts happen in a
# private mount namespace (unshare -m) and disappear with it; the host's
# mounts are never touched. Where that is not possible the command runs as it
# is.
set -euo pipefail

mounted() { [ "$(stat -f -c %T "$1" 2>/dev/null)" = "$2" ]; }

if [ "${WITH_KERNEL_FS_INNER:-}" = 1 ]; then
	[ -e /sys/kernel/security/lsm ] || mount -t securityfs securityfs /sys/kernel/security 2>/dev/null || true
	mounted /sys/kernel/tracing tracefs || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
	mounted /sys/fs/bpf bpf_fs || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
	exec "$@"
fi
if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null 2>&1 &&
	{ [ ! -e /sys/kernel/security/lsm ] || ! mounted /sys/kernel/tracing tracefs || ! mounted /sys/fs/bpf bpf_fs; } &&
	unshare -m --propagation private true 2>/dev/null; then
	WITH_KERNEL_FS_INNER=1 exec unshare -m --propagation private "$0" "$@"
fi
exec "$@"
