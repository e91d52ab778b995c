#!/usr/bin/env bash
# with-kernel-fs.sh COMMAND...
#
# Runs COMMAND with securityfs mounted at /sys/kernel/security, so that the
# live tests can compare the kernel collector with the real LSM list and
# lockdown mode. As root, the mount happens in a private mount namespace
# (unshare -m) and disappears with it; the host's mounts are never touched.
# Where that is not possible the command runs as it is.
set -euo pipefail

if [ "${WITH_KERNEL_FS_INNER:-}" = 1 ]; then
	[ -e /sys/kernel/security/lsm ] || mount -t securityfs securityfs /sys/kernel/security 2>/dev/null || true
	exec "$@"
fi
if [ "$(id -u)" -eq 0 ] && [ ! -e /sys/kernel/security/lsm ] && command -v unshare >/dev/null 2>&1 &&
	unshare -m --propagation private true 2>/dev/null; then
	WITH_KERNEL_FS_INNER=1 exec unshare -m --propagation private "$0" "$@"
fi
exec "$@"
