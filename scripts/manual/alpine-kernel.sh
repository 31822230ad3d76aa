#!/usr/bin/env bash
# alpine-kernel.sh stages Alpine's linux-virt kernel for banger in
# MANUAL_DIR/alpine-kernel (default build/manual/alpine-kernel): vmlinux
# (ELF, for Firecracker), vmlinuz (bzImage), initramfs.img, modules/RELEASE
# and config. See docs/manual-images.md.
set -euo pipefail
shopt -s inherit_errexit

prog=alpine-kernel
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ALPINE_RELEASE=${ALPINE_RELEASE:-3.20.3}
ALPINE_KERNEL_PKG=${ALPINE_KERNEL_PKG:-linux-virt}
ALPINE_ARCH=${ALPINE_ARCH:-x86_64}

usage() {
	cat >&2 <<USAGE
usage: $prog.sh

Downloads the $ALPINE_KERNEL_PKG package of Alpine $ALPINE_RELEASE's main
repository ($ALPINE_MIRROR/vX.Y/main/$ALPINE_ARCH, checked against
APKINDEX: size, control checksum and data hash) and writes
$MANUAL_DIR/alpine-kernel/:
  vmlinux         the uncompressed ELF kernel (Firecracker boots this)
  vmlinuz         the package's bzImage (QEMU boots it too)
  initramfs.img   busybox + the virtio/ext4/vsock modules, then switch_root
  modules/REL/    the modules, uncompressed, with modules.dep
  config          the kernel configuration
  info.txt        where it came from

Environment: ALPINE_RELEASE (default 3.20.3), ALPINE_MIRROR (default
https://dl-cdn.alpinelinux.org/alpine), ALPINE_KERNEL_PKG, MANUAL_DIR,
BUSYBOX. Needs network access to the mirror; root is not needed.
USAGE
	exit 2
}

[ $# = 0 ] || usage
[ "$ALPINE_ARCH" = x86_64 ] || die "only ALPINE_ARCH=x86_64 is supported"
branch=$(alpine_branch "$ALPINE_RELEASE")
require_tools curl:curl tar:tar gzip:gzip python3:python3 \
	depmod:kmod readelf:binutils sha256sum:coreutils

make_workdir
version=$(alpine_fetch_package "$branch" main "$ALPINE_ARCH" "$ALPINE_KERNEL_PKG" "$WORK/pkg")
info "unpacked $ALPINE_KERNEL_PKG-$version"

flavor=${ALPINE_KERNEL_PKG#linux-}
vmlinuz=
for f in "$WORK/pkg/boot/vmlinuz-$flavor" "$WORK"/pkg/boot/vmlinuz*; do
	if [ -f "$f" ]; then
		vmlinuz=$f
		break
	fi
done
[ -n "$vmlinuz" ] || die "$ALPINE_KERNEL_PKG-$version has no boot/vmlinuz-*"

stage_kernel "$WORK/pkg" "$vmlinuz" "$WORK/alpine-kernel"
cat >"$WORK/alpine-kernel/info.txt" <<INFO
package=$ALPINE_KERNEL_PKG-$version
release=$KERNEL_RELEASE
alpine=$ALPINE_RELEASE
source=$ALPINE_MIRROR/$branch/main/$ALPINE_ARCH/$ALPINE_KERNEL_PKG-$version.apk
INFO
install_dir "$WORK/alpine-kernel" "$MANUAL_DIR/alpine-kernel"
info "wrote $MANUAL_DIR/alpine-kernel (kernel $KERNEL_RELEASE); next: sudo make rootfs-alpine, then make alpine-register"
