#!/usr/bin/env bash
# boot-fixtures.sh: (re)generate the boot collector's fixture trees under
# collectors/testdata/trees/ from what real tools produce, so that no module
# or initramfs in them is a hand-made blob:
#
#   - each module is an ELF relocatable object compiled by clang from a
#     .modinfo section as include/linux/module.h lays it out (vermagic=,
#     name=, license=, version=), signed by the kernel's own
#     scripts/sign-file (from Debian's linux-kbuild, scripts/debian-kernel.sh)
#     with keys made by openssl as certs/Makefile makes the kernel's, then
#     compressed with zstd as Azure Linux 4.0 ships them (.ko.zst);
#   - each initramfs is dracut's layout: an uncompressed newc cpio with the
#     early microcode, then the main newc cpio (cpio -H newc) compressed
#     with zstd.
#
# The trees (see each tree's README):
#   azl4-gpu-newkernel     GPU VM, running kernel ready, new kernel without nvidia.ko
#   azl4-gpu-secureboot    the same under Secure Boot: the new kernel's DKMS
#                          nvidia is unsigned, nvidia_uvm signed by a key not enrolled
#   hyperv-gen1-newinitrd  Gen1 VM whose new initramfs lacks hv_storvsc
#
# Regenerating gives new keys (new serials): run
# `go test ./cmd/azurelinux-probe -run Golden -update` afterwards.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
trees="$here/../collectors/testdata/trees"
die() { echo "boot-fixtures: $*" >&2; exit 1; }
for tool in clang openssl zstd cpio dpkg-deb; do
	command -v "$tool" >/dev/null || die "$tool is missing"
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
kbuild=$("$here/debian-kernel.sh" | sed -n 2p)
dpkg-deb -x "$kbuild" "$work/kbuild"
signfile=$(echo "$work"/kbuild/usr/lib/linux-kbuild-*/scripts/sign-file)
[ -x "$signfile" ] || die "no sign-file in $kbuild"

R1=6.18.31-1.3.azl4.x86_64 # running
R2=6.18.40-1.1.azl4.x86_64 # newly installed, boots next
MID=5b2f6d0c1e8a4c39a1d7e2f3b4c5d6e7 # machine id of the BLS entry names

# key NAME CN O: a signing key as certs/Makefile generates the kernel's.
# Keys are kept in KEYS (outside the tree) so that a rerun on the same
# machine writes the same bytes (sign-file's RSA signatures and zstd are
# deterministic).
KEYS=${BOOT_FIXTURE_KEYS:-/var/cache/azurelinux-probe-test/boot-fixture-keys}
mkdir -p "$KEYS"
key() {
	if [ -s "$KEYS/$1.pem" ]; then
		cp "$KEYS/$1.pem" "$work/$1.pem"
		openssl x509 -in "$work/$1.pem" -outform DER -out "$work/$1.der"
		return
	fi
	cat > "$work/$1.genkey" <<-EOF
	[ req ]
	default_bits = 2048
	distinguished_name = req_distinguished_name
	prompt = no
	x509_extensions = myexts
	[ req_distinguished_name ]
	O = $3
	CN = $2
	[ myexts ]
	basicConstraints=critical,CA:FALSE
	keyUsage=digitalSignature
	subjectKeyIdentifier=hash
	authorityKeyIdentifier=keyid
	EOF
	openssl req -new -nodes -utf8 -sha512 -days 36500 -batch -x509 -config "$work/$1.genkey" \
		-outform PEM -out "$work/$1.pem" -keyout "$work/$1.pem" 2>/dev/null
	openssl x509 -in "$work/$1.pem" -outform DER -out "$work/$1.der"
	cp "$work/$1.pem" "$KEYS/$1.pem"
}
key kernel "Azure Linux kernel signing key (fixture)" "Microsoft Corporation"
key dkms "DKMS module signing key" "DKMS"
key akmods "akmods local signing key" "akmods"

# keydesc NAME: the description the kernel gives the key in /proc/keys
# (x509_key_preparse: "<CN>: <subject key id>"; CN alone when it starts
# with O or O is at least 7 characters and inside it, else "O: CN").
keydesc() {
	local cn o skid
	cn=$(openssl x509 -in "$work/$1.pem" -noout -subject -nameopt multiline | sed -n 's/^ *commonName *= //p')
	o=$(openssl x509 -in "$work/$1.pem" -noout -subject -nameopt multiline | sed -n 's/^ *organizationName *= //p')
	skid=$(openssl x509 -in "$work/$1.pem" -noout -ext subjectKeyIdentifier | tail -1 | tr -d ' :' | tr 'A-F' 'a-f')
	case "$cn" in
	"$o"*) echo "$cn: $skid" ;;
	*) if [ ${#o} -ge 7 ] && [[ "$cn" == *"$o"* ]]; then echo "$cn: $skid"; else echo "$o: $cn: $skid"; fi ;;
	esac
}

# module DEST RELEASE NAME KEY: compile a module whose .modinfo says it was
# built for RELEASE, sign it with KEY (or leave it unsigned: -), zstd it.
module() {
	local dest=$1 rel=$2 name=$3 key=$4 src="$work/$3-$2.c" obj="$work/$3-$2.ko"
	cat > "$src" <<-EOF
	/* The .modinfo strings of include/linux/module.h (MODULE_INFO). */
	#define MODINFO(tag, s) static const char __modinfo_##tag[] __attribute__((used, section(".modinfo"), aligned(1))) = s
	MODINFO(version, "version=580.95.05");
	MODINFO(license, "license=Dual MIT/GPL");
	MODINFO(name, "name=$name");
	MODINFO(vermagic, "vermagic=$rel SMP preempt mod_unload modversions ");
	EOF
	clang -c -O2 -o "$obj" "$src"
	if [ "$key" != - ]; then
		"$signfile" sha512 "$work/$key.pem" "$work/$key.der" "$obj"
	fi
	mkdir -p "$(dirname "$dest")"
	case "${COMPRESS:-zstd}" in
	zstd) zstd -q -f -19 -o "$dest.zst" "$obj" ;;
	xz) xz -c --check=crc32 "$obj" > "$dest.xz" ;; # Azure Linux 3.0's modules
	esac
}

# initramfs DEST RELEASE MODULE...: dracut's layout with MODULE.ko.zst
# (kernel/<name>.ko.zst paths as dracut's instmods copies them).
initramfs() {
	local dest=$1 rel=$2
	shift 2
	local early="$work/early" main="$work/main"
	rm -rf "$early" "$main"
	mkdir -p "$early/kernel/x86/microcode" "$main/usr/lib/modules/$rel/kernel/drivers" "$main/usr/bin"
	echo "microcode update (fixture)" > "$early/kernel/x86/microcode/AuthenticAMD.bin"
	ln -s usr/lib "$main/lib"
	echo '#!/bin/sh' > "$main/usr/bin/init"
	for m in "$@"; do
		module "$main/usr/lib/modules/$rel/kernel/drivers/$m.ko" "$rel" "$(basename "$m")" kernel
	done
	find "$early" "$main" -exec touch -h -d @1764547200 {} +
	(cd "$early" && find . -print | LC_ALL=C sort | cpio --quiet -o -H newc --reproducible) > "$work/early.cpio"
	(cd "$main" && find . -print | LC_ALL=C sort | cpio --quiet -o -H newc --reproducible) | zstd -q -19 > "$work/main.cpio.zst"
	mkdir -p "$(dirname "$dest")"
	cat "$work/early.cpio" "$work/main.cpio.zst" > "$dest"
}

# base TREE: what every boot tree has: os-release, the running kernel.
base() {
	local t=$1
	rm -rf "$t"
	mkdir -p "$t/etc" "$t/usr/lib" "$t/proc/sys/kernel" "$t/boot/loader/entries" "$t/boot/grub2"
	ln -s usr/lib "$t/lib"
	cp "$trees/azure-gpu-nodriver/etc/os-release" "$t/etc/os-release"
	echo "$R1" > "$t/proc/sys/kernel/osrelease"
	echo "#1 SMP PREEMPT_DYNAMIC Thu Nov  5 02:13:44 UTC 2026" > "$t/proc/sys/kernel/version"
	echo 0 > "$t/proc/sys/kernel/tainted"
	for rel in "$R1" "$R2"; do
		mkdir -p "$t/usr/lib/modules/$rel"
		# Azure Linux 4.0 builds these in (CONFIG_HYPERV=y,
		# CONFIG_HYPERV_STORAGE=y, CONFIG_MICROSOFT_MANA=y, CONFIG_BLK_DEV_NVME=y).
		printf '%s\n' kernel/drivers/hv/hv_vmbus.ko kernel/drivers/hv/hv_utils.ko kernel/drivers/hv/hv_balloon.ko \
			kernel/drivers/scsi/hv_storvsc.ko kernel/drivers/pci/controller/pci-hyperv.ko \
			kernel/drivers/net/ethernet/microsoft/mana/mana.ko kernel/drivers/nvme/host/nvme.ko \
			> "$t/usr/lib/modules/$rel/modules.builtin"
		: > "$t/boot/vmlinuz-$rel"
		cat > "$t/boot/loader/entries/$MID-$rel.conf" <<-EOF
		title Azure Linux ($rel) 4.0 (Cloud Variant Beta)
		version $rel
		linux /vmlinuz-$rel
		initrd /initramfs-$rel.img
		options \$kernelopts
		grub_users \$grub_users
		grub_arg --unrestricted
		grub_class azurelinux
		EOF
	done
	# grub2-mkenv's 1024-byte block; kernel-install's grubby made the new
	# kernel the default.
	{ printf '# GRUB Environment Block\nsaved_entry=%s-%s\nboot_success=0\n' "$MID" "$R2"; } > "$work/grubenv"
	head -c 1024 < <(cat "$work/grubenv"; yes '#' | tr -d '\n') > "$t/boot/grub2/grubenv"
	printf 'hv_netvsc 131072 0 - Live 0x0000000000000000\n' > "$t/proc/modules"
}

# dkms TREE MODULE VERSION RELEASE INSTALLED(yes/no)
dkms() {
	local t=$1 mod=$2 ver=$3 rel=$4
	mkdir -p "$t/var/lib/dkms/$mod/$ver/$rel/x86_64/module" "$t/var/lib/dkms/$mod/$ver/$rel/x86_64/log"
	ln -sfn "/usr/src/$mod-$ver" "$t/var/lib/dkms/$mod/$ver/source"
	echo "DKMS make.log for $mod-$ver for kernel $rel (x86_64)" > "$t/var/lib/dkms/$mod/$ver/$rel/x86_64/log/make.log"
	if [ "$5" = yes ]; then
		ln -sfn "../$ver/$rel/x86_64" "$t/var/lib/dkms/$mod/kernel-$rel-x86_64"
	fi
}

gpu() {
	local t=$1
	base "$t"
	for rel in "$R1" "$R2"; do
		module "$t/usr/lib/modules/$rel/kernel/drivers/net/hyperv/hv_netvsc.ko" "$rel" hv_netvsc kernel
		module "$t/usr/lib/modules/$rel/kernel/drivers/net/ethernet/mellanox/mlx5/core/mlx5_core.ko" "$rel" mlx5_core kernel
		initramfs "$t/boot/initramfs-$rel.img" "$rel" net/hyperv/hv_netvsc
	done
	printf '%s\n' "nvidia_uvm 2076672 0 - Live 0x0000000000000000 (OE)" \
		"nvidia 14376960 1 nvidia_uvm, Live 0x0000000000000000 (OE)" \
		"mlx5_core 2818048 0 - Live 0x0000000000000000" >> "$t/proc/modules"
	# The running kernel's nvidia, built and installed by DKMS and signed
	# with DKMS's key, which is enrolled (MOK, the .machine keyring).
	module "$t/usr/lib/modules/$R1/updates/dkms/nvidia.ko" "$R1" nvidia dkms
	module "$t/usr/lib/modules/$R1/updates/dkms/nvidia-uvm.ko" "$R1" nvidia_uvm dkms
	dkms "$t" nvidia 580.95.05 "$R1" yes
	mkdir -p "$t/var/lib/dkms"
	openssl x509 -in "$work/dkms.pem" -out "$t/var/lib/dkms/mok.pub"
	# /proc/keys as root reads it (security/keys/proc.c): the keyrings
	# and their asymmetric keys.
	{
		echo "0a1b2c3d I------     1 perm 1f0b0000     0     0 keyring   .builtin_trusted_keys: 1"
		echo "0a1b2c3e I------     1 perm 1f0b0000     0     0 keyring   .secondary_trusted_keys: 2"
		echo "0a1b2c3f I------     1 perm 1f0f0000     0     0 keyring   .machine: 1"
		echo "0a1b2c40 I------     1 perm 1f0f0000     0     0 keyring   .platform: 2"
		echo "1b2c3d4e I------     1 perm 1f030000     0     0 asymmetri $(keydesc kernel): X509.rsa $(keydesc kernel | awk -F': ' '{print substr($NF, length($NF)-7)}') []"
		echo "1b2c3d4f I------     1 perm 1f010000     0     0 asymmetri $(keydesc dkms): X509.rsa $(keydesc dkms | awk -F': ' '{print substr($NF, length($NF)-7)}') []"
		echo "1b2c3d50 I------     1 perm 1f010000     0     0 asymmetri Microsoft Corporation UEFI CA 2011: 13adbf4309bd82709c8cd54f316ed522988a1bd4: X509.rsa 988a1bd4 []"
		echo "1b2c3d51 I------     1 perm 1f010000     0     0 asymmetri Microsoft Windows Production PCA 2011: a92902398e16c49778cd90f99e4f9ae17c55af53: X509.rsa 7c55af53 []"
	} > "$t/proc/keys"
	mkdir -p "$t/sys/module/module/parameters"
}

# 1. GPU VM, no Secure Boot: DKMS did not build nvidia for the new kernel.
t="$trees/azl4-gpu-newkernel"
gpu "$t"
echo N > "$t/sys/module/module/parameters/sig_enforce"
mkdir -p "$t/sys/firmware/efi/efivars"
printf '\x06\x00\x00\x00\x00' > "$t/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
cat > "$t/README" <<EOF
Azure Linux 4.0 GPU VM (Gen2, Secure Boot off) after dnf5 upgrade installed
kernel $R2: the running kernel $R1 has DKMS's nvidia and nvidia_uvm, the
new kernel (next boot, grubenv saved_entry) has no nvidia.ko: DKMS did not
build it. Generated by scripts/boot-fixtures.sh.
EOF

# 2. The same under Secure Boot: DKMS built nvidia for the new kernel but
# did not sign it; nvidia_uvm is signed with akmods' key, not enrolled.
t="$trees/azl4-gpu-secureboot"
gpu "$t"
echo Y > "$t/sys/module/module/parameters/sig_enforce"
mkdir -p "$t/sys/firmware/efi/efivars"
printf '\x06\x00\x00\x00\x01' > "$t/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
module "$t/usr/lib/modules/$R2/updates/dkms/nvidia.ko" "$R2" nvidia -
module "$t/usr/lib/modules/$R2/updates/dkms/nvidia-uvm.ko" "$R2" nvidia_uvm akmods
dkms "$t" nvidia 580.95.05 "$R2" yes
mkdir -p "$t/etc/pki/akmods/certs"
cp "$work/akmods.der" "$t/etc/pki/akmods/certs/public_key.der"
# akmods' results (rpmfusion akmods, buildinstall_kmod): the new kernel's
# build of the open nvidia module failed once, then succeeded.
mkdir -p "$t/var/cache/akmods/nvidia-open"
echo "2026/11/30 10:02:11 akmods: Building rpms failed" > "$t/var/cache/akmods/nvidia-open/580.95.05-1-for-$R2.failed.log"
echo "2026/11/30 10:02:11 akmods: Building rpms failed" > "$t/var/cache/akmods/nvidia-open/580.95.05-1-for-$R1.failed.log"
echo "2026/11/30 10:09:42 akmods: Successful." > "$t/var/cache/akmods/nvidia-open/580.95.05-1-for-$R2.log"
echo "2026/11/30 10:09:42 akmods: Starting" > "$t/var/cache/akmods/akmods.log"
cat > "$t/README" <<EOF
Azure Linux 4.0 GPU VM under Secure Boot (Trusted Launch: IMA arch policy
enforces module signatures). Kernel $R2 is installed and boots next; DKMS
built nvidia for it without signing it, and nvidia_uvm is signed with
akmods' local key, which is not enrolled (not in /proc/keys). Generated by
scripts/boot-fixtures.sh.
EOF

# 3. Hyper-V Gen1 (BIOS, no EFI) whose new initramfs lacks hv_storvsc: on
# this kernel build hv_storvsc is a module (not in modules.builtin).
t="$trees/hyperv-gen1-newinitrd"
base "$t"
for rel in "$R1" "$R2"; do
	grep -v hv_storvsc "$t/usr/lib/modules/$rel/modules.builtin" > "$work/builtin"
	cp "$work/builtin" "$t/usr/lib/modules/$rel/modules.builtin"
	module "$t/usr/lib/modules/$rel/kernel/drivers/net/hyperv/hv_netvsc.ko" "$rel" hv_netvsc kernel
	module "$t/usr/lib/modules/$rel/kernel/drivers/scsi/hv_storvsc.ko" "$rel" hv_storvsc kernel
done
initramfs "$t/boot/initramfs-$R1.img" "$R1" net/hyperv/hv_netvsc scsi/hv_storvsc
initramfs "$t/boot/initramfs-$R2.img" "$R2" net/hyperv/hv_netvsc
echo "hv_storvsc 28672 2 - Live 0x0000000000000000" >> "$t/proc/modules"
# Gen1: no saved_entry, grub boots the newest entry.
head -c 1024 < <(printf '# GRUB Environment Block\n'; yes '#' | tr -d '\n') > "$t/boot/grub2/grubenv"
cat > "$t/README" <<EOF
Hyper-V Gen1 VM (BIOS) with kernel $R2 installed, its initramfs built
without hv_storvsc (a module on this kernel build): the next boot cannot
find its disk. Generated by scripts/boot-fixtures.sh.
EOF
# 4. Bad input in the broken tree, each costing one fact: a BLS entry
# without a version, a grubenv naming no entry, a truncated .ko.zst, a
# "module" that is not ELF, a truncated initramfs, a SecureBoot variable
# of the wrong size.
t="$trees/broken"
rel=$(cat "$t/proc/sys/kernel/osrelease")
rm -rf "$t/boot" "$t/usr/lib/modules/$rel"
mkdir -p "$t/boot/loader/entries" "$t/boot/grub2" "$t/sys/firmware/efi/efivars"
printf 'title Azure Linux (no version)\nlinux /vmlinuz-%s\n' "$rel" > "$t/boot/loader/entries/$MID-noversion.conf"
printf '# GRUB Environment Block\nsaved_entry=%s-6.18.99-1.azl4.x86_64\n' "$MID" > "$t/boot/grub2/grubenv"
module "$work/hv_netvsc.ko" "$rel" hv_netvsc kernel
mkdir -p "$t/usr/lib/modules/$rel/kernel/drivers/net/hyperv" "$t/usr/lib/modules/$rel/extra"
head -c 200 "$work/hv_netvsc.ko.zst" > "$t/usr/lib/modules/$rel/kernel/drivers/net/hyperv/hv_netvsc.ko.zst"
echo "placeholder: not a module" > "$t/usr/lib/modules/$rel/extra/nvidia.ko"
initramfs "$work/initramfs.img" "$rel" net/hyperv/hv_netvsc
head -c 1500 "$work/initramfs.img" > "$t/boot/initramfs-$rel.img"
: > "$t/boot/vmlinuz-$rel"
printf '\x06\x00\x00' > "$t/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"

# 5. The healthy Azure Linux 4.0 GPU VM of the matrix tests gets the files
# of the watched modules it has loaded, so that its only kernel is ready.
t="$trees/azl4-azure-gen2"
rel=$(cat "$t/proc/sys/kernel/osrelease")
rm -rf "$t/usr/lib/modules/$rel/kernel" "$t/usr/lib/modules/$rel/extra"
module "$t/usr/lib/modules/$rel/kernel/drivers/net/hyperv/hv_netvsc.ko" "$rel" hv_netvsc kernel
module "$t/usr/lib/modules/$rel/kernel/drivers/nvme/host/nvme.ko" "$rel" nvme kernel
module "$t/usr/lib/modules/$rel/extra/nvidia/nvidia.ko" "$rel" nvidia kernel
module "$t/usr/lib/modules/$rel/extra/nvidia/nvidia-uvm.ko" "$rel" nvidia_uvm kernel

# 6. The GPU VM whose driver was lost after a kernel update: its previous
# kernel's nvidia.ko.xz becomes a real module (it was a placeholder).
t="$trees/azure-gpu-nodriver"
rel=6.18.31-1.3.azl4.x86_64
rm -f "$t/usr/lib/modules/$rel/extra/nvidia/nvidia.ko.xz"
COMPRESS=xz module "$t/usr/lib/modules/$rel/extra/nvidia/nvidia.ko" "$rel" nvidia kernel

echo "boot-fixtures: wrote azl4-gpu-newkernel azl4-gpu-secureboot hyperv-gen1-newinitrd, bad input in broken" >&2
