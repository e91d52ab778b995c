#!/usr/bin/env bash
# need-tools.sh TOOL:DEBIAN_PACKAGE:DNF_PACKAGE ...
#
# Makes sure each TOOL is on the PATH, installing its package with apt-get
# (Debian) or dnf5/dnf (Azure Linux, Fedora) when it is missing. A TOOL that
# contains a slash is a file that must exist (a header, say). A tool that
# is still missing afterwards is an error: tests never skip silently for want
# of a tool.
set -euo pipefail

have() {
	case "$1" in
	*/*) [ -e "$1" ] ;;
	*) command -v "$1" >/dev/null 2>&1 ;;
	esac
}

missing=()
for spec in "$@"; do
	IFS=: read -r tool deb rpm <<<"$spec"
	have "$tool" || missing+=("$spec")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
debs=() rpms=()
for spec in "${missing[@]}"; do
	IFS=: read -r tool deb rpm <<<"$spec"
	debs+=("$deb")
	rpms+=("$rpm")
done
if command -v apt-get >/dev/null 2>&1; then
	echo "need-tools: installing ${debs[*]} with apt-get" >&2
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${debs[@]}" >&2
elif command -v dnf5 >/dev/null 2>&1; then
	echo "need-tools: installing ${rpms[*]} with dnf5" >&2
	$sudo dnf5 install -y "${rpms[@]}" >&2
elif command -v dnf >/dev/null 2>&1; then
	echo "need-tools: installing ${rpms[*]} with dnf" >&2
	$sudo dnf install -y "${rpms[@]}" >&2
fi

status=0
for spec in "${missing[@]}"; do
	IFS=: read -r tool _ _ <<<"$spec"
	if ! have "$tool"; then
		echo "need-tools: $tool is missing and could not be installed" >&2
		status=1
	fi
done
exit $status
