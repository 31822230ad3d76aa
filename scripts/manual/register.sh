#!/usr/bin/env bash
# register.sh registers the files a manual flow wrote under MANUAL_DIR as a
# banger image: 'register.sh void' (image "void") or 'register.sh alpine'
# (image "alpine"). See docs/manual-images.md.
set -euo pipefail
shopt -s inherit_errexit

prog=register
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
	cat >&2 <<USAGE
usage: $prog.sh void|alpine [--name NAME]

Registers $MANUAL_DIR/rootfs-DISTRO.ext4, rootfs-DISTRO.work-seed.ext4 and
the kernel in $MANUAL_DIR/DISTRO-kernel/ as banger image DISTRO (or NAME).
The image references those files (unmanaged); 'banger image promote NAME'
copies them into banger's storage so the build directory can change.
Environment: BANGER (default build/bin/banger, else banger on PATH),
MANUAL_DIR.
USAGE
	exit 2
}

[ $# -ge 1 ] || usage
distro=$1
shift
case $distro in
void | alpine) ;;
*) usage ;;
esac
name=$distro
while [ $# -gt 0 ]; do
	case $1 in
	--name)
		[ $# -ge 2 ] || usage
		name=$2
		shift 2
		;;
	*) usage ;;
	esac
done
prog=$distro-register

if [ -z "${BANGER:-}" ]; then
	if [ -x "$repo_root/build/bin/banger" ]; then
		BANGER=$repo_root/build/bin/banger
	else
		BANGER=$(command -v banger) || die "no banger CLI: run 'make build' (or set BANGER=/path/to/banger)"
	fi
fi
[ -x "$BANGER" ] || die "BANGER=$BANGER is not an executable; run 'make build'"

dir=$(realpath -m -- "$MANUAL_DIR")
kdir="$dir/$distro-kernel"
rootfs="$dir/rootfs-$distro.ext4"
seed="$dir/rootfs-$distro.work-seed.ext4"
[ -d "$kdir" ] || die "no $kdir: run 'make $distro-kernel' first"
for f in "$kdir/initramfs.img" "$kdir/modules"; do
	[ -e "$f" ] || die "$kdir is incomplete (no $(basename "$f")): run 'make $distro-kernel' again"
done
[ -f "$rootfs" ] || die "no $rootfs: run 'sudo make rootfs-$distro' first"
[ -f "$seed" ] || die "no $seed: run 'sudo make rootfs-$distro' again"
if [ -f "$kdir/vmlinux" ]; then
	kernel="$kdir/vmlinux"
else
	kernel="$kdir/vmlinuz"
	[ -f "$kernel" ] || die "$kdir has neither vmlinux nor vmlinuz: run 'make $distro-kernel' again"
	warn "$kdir has no ELF vmlinux; registering the bzImage, which the QEMU driver boots but Firecracker does not"
fi

if "$BANGER" image show "$name" >/dev/null 2>&1; then
	die "an image named $name already exists: delete it first with '$BANGER image delete $name' (or pass ARGS='--name OTHER')"
fi
"$BANGER" image register --name "$name" --rootfs "$rootfs" --work-seed "$seed" \
	--kernel "$kernel" --initrd "$kdir/initramfs.img" --modules "$kdir/modules"
info "registered image $name; try: banger vm create --image $name --name $name-dev"
