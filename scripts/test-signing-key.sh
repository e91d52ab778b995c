#!/usr/bin/env bash
# test-signing-key.sh GNUPGHOME
#
# A throwaway signing key for `make package-test`: a fresh keyring in
# GNUPGHOME (its previous content and agent are removed) with one RSA 3072
# signing key without a passphrase, valid for a day, user id
# package-test@azurelinux-probe.invalid. Never a release key.
set -euo pipefail
home=${1:?usage: test-signing-key.sh GNUPGHOME}
if [ -d "$home" ]; then
	gpgconf --homedir "$home" --kill gpg-agent 2>/dev/null || true
	rm -rf "$home"
fi
mkdir -p "$home"
chmod 0700 "$home"
gpg --homedir "$home" --batch --quiet --passphrase '' \
	--quick-generate-key 'azurelinux-probe package test (throwaway) <package-test@azurelinux-probe.invalid>' rsa3072 sign 1d
gpg --homedir "$home" --batch --with-colons --list-secret-keys 2>/dev/null | awk -F: '$1 == "fpr" { print $10; exit }'
