#!/usr/bin/env bash
# repo.sh DIST REPO_URL
#
# `make repo`: turns DIST (the RPMs `make rpm` wrote) into a dnf repository
# that Azure Linux installs from with its signature checking on.
#   GPG_KEY=KEY   the signing key: a fingerprint, key id or user id of a
#                 secret key in the gpg keyring (GNUPGHOME, else ~/.gnupg),
#                 a team's own release key. Every RPM is signed with it
#                 (rpmsign --addsign), then the repository metadata
#                 (detached, armored repodata/repomd.xml.asc); the public
#                 key is exported as DIST/RPM-GPG-KEY-azurelinux-probe and
#                 DIST/azurelinux-probe.repo says gpgcheck=1,
#                 repo_gpgcheck=1 and gpgkey=REPO_URL/RPM-GPG-KEY-...
#   UNSIGNED=1    without GPG_KEY: an unsigned repository, and a repo file
#                 that turns signature checking off (a private lab only).
# Without either it fails and says so: nothing unsigned is made by default.
set -euo pipefail
cd "$(dirname "$0")/.."
dist=${1:?usage: repo.sh DIST REPO_URL}
url=${2:?usage: repo.sh DIST REPO_URL}
name=azurelinux-probe
keyname=RPM-GPG-KEY-$name
key=${GPG_KEY:-}

die() { echo "make repo: $*" >&2; exit 1; }

shopt -s nullglob
rpms=("$dist"/*.rpm "$dist"/*/*.rpm)
[ ${#rpms[@]} -gt 0 ] || die "no RPM in $dist/ (make rpm)"

if [ -z "$key" ]; then
	if [ "${UNSIGNED:-}" != 1 ]; then
		die "no signing key: set GPG_KEY to a secret key of your keyring (\`make repo GPG_KEY=releases@example.org\`,
  see docs/packaging.md), or UNSIGNED=1 for an unsigned lab repository whose repo file turns gpgcheck off"
	fi
	echo "make repo: UNSIGNED=1: the packages and the metadata are NOT signed; $dist/$name.repo sets gpgcheck=0 and repo_gpgcheck=0" >&2
	rm -f "$dist/$keyname" "$dist/repodata/repomd.xml.asc"
	createrepo_c --quiet --update "$dist"
	sed -e "s|@REPO_URL@|$url|" -e 's/^gpgcheck=1$/gpgcheck=0/' -e 's/^repo_gpgcheck=1$/repo_gpgcheck=0/' -e '/^gpgkey=/d' \
		-e 's/^name=.*/& (UNSIGNED)/' packaging/$name.repo > "$dist/$name.repo"
	echo "repository: $dist/ (UNSIGNED; $dist/$name.repo, baseurl $url)"
	exit 0
fi

# The key, as one fingerprint: a user id matching two keys is refused.
fprs=$( (gpg --batch --with-colons --list-secret-keys -- "$key" 2>/dev/null || true) |
	awk -F: '$1 == "sec" { s = 1; next } s && $1 == "fpr" { print $10; s = 0 }')
[ -n "$fprs" ] || die "GPG_KEY=$key: no such secret key in ${GNUPGHOME:-~/.gnupg} (gpg --list-secret-keys)"
[ "$(wc -l <<<"$fprs")" -eq 1 ] || die "GPG_KEY=$key names $(wc -l <<<"$fprs") secret keys; give a fingerprint"
fpr=$fprs

# rpmsign (rpm's %__gpg_sign_cmd) runs %__gpg with _gpg_name; a key with
# a passphrase asks for it through the gpg-agent's pinentry. Debian's rpm
# names /usr/bin/gpg2, which Debian does not install: the gpg on PATH then.
gpgbin=$(rpm --eval '%{__gpg}')
[ -x "$gpgbin" ] || gpgbin=$(command -v gpg)
rpmsign --addsign --define "_gpg_name $fpr" --define "__gpg $gpgbin" "${rpms[@]}" >/dev/null
gpg --batch --yes --armor --export "$fpr" > "$dist/$keyname"
# Every package verifies against the exported key alone (a scratch rpm
# database), before anything is published.
db=$(mktemp -d)
trap 'rm -rf "$db"' EXIT
rpmkeys --dbpath "$db" --import "$dist/$keyname"
for r in "${rpms[@]}"; do
	out=$(rpmkeys --dbpath "$db" --checksig -v "$r") || die "$r does not verify after signing: $out"
	grep -q 'Signature, key ID .*: OK' <<<"$out" || die "$r has no signature by $fpr: $out"
done
createrepo_c --quiet --update "$dist"
rm -f "$dist/repodata/repomd.xml.asc"
gpg --batch --yes --armor --local-user "$fpr" --detach-sign -o "$dist/repodata/repomd.xml.asc" "$dist/repodata/repomd.xml"
sed -e "s|@REPO_URL@|$url|" packaging/$name.repo > "$dist/$name.repo"
echo "repository: $dist/ (signed by $fpr: ${#rpms[@]} RPMs and repodata/repomd.xml.asc; key $dist/$keyname; $dist/$name.repo, baseurl $url)"
