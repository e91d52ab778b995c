#!/bin/sh
# mkrpmdb.sh DBDIR NAME[:EPOCH]=VERSION-RELEASE...
#
# Builds a real rpm sqlite database in DBDIR holding empty packages with the
# given names and versions, as the fixture trees' rpm databases were made
# (Debian's rpm and rpmbuild packages; rpm >= 4.16 writes rpmdb.sqlite):
#
#   checks/testdata/mkrpmdb.sh collectors/testdata/trees/azl4-azure-gen2/usr/lib/sysimage/rpm \
#     dnf5=5.2.18.0-1.azl4 rpm=6.0.1-1.azl4 openssl-libs:1=3.5.4-3.azl4 systemd=258.4-4.azl4
set -eu
db=$1
shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/top" "$db"
for spec in "$@"; do
	name=${spec%%=*}
	evr=${spec#*=}
	epoch=
	case $name in *:*) epoch=${name#*:}; name=${name%%:*} ;; esac
	cat >"$work/top/$name.spec" <<SPEC
Name: $name
${epoch:+Epoch: $epoch}
Version: ${evr%%-*}
Release: ${evr#*-}
Summary: azurelinux-probe fixture package $name
License: MIT
%description
Empty package standing for $name in azurelinux-probe's fixture trees.
%files
SPEC
	rpmbuild --quiet --define "_topdir $work/top" --define "_build_id_links none" \
		--target x86_64 -bb "$work/top/$name.spec" >/dev/null 2>&1
done
rm -f "$db/rpmdb.sqlite" "$db/rpmdb.sqlite-shm" "$db/rpmdb.sqlite-wal" "$db/.rpm.lock"
rpm --dbpath "$(cd "$db" && pwd)" --initdb
rpm --dbpath "$(cd "$db" && pwd)" -i --nodeps --ignoreos --ignorearch --justdb --noscripts \
	"$work"/top/RPMS/*/*.rpm 2>/dev/null
# Fold the write-ahead log into the database and keep only the database.
sqlite3 "$db/rpmdb.sqlite" 'PRAGMA wal_checkpoint(TRUNCATE); VACUUM;' >/dev/null
rm -f "$db/rpmdb.sqlite-shm" "$db/rpmdb.sqlite-wal" "$db/.rpm.lock"
