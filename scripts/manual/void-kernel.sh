#!/usr/bin/env bash
# void-kernel.sh stages Void Linux's kernel package for banger in
# MANUAL_DIR/void-kernel (default build/manual/void-kernel): vmlinux (ELF,
# for Firecracker), vmlinuz (bzImage), initramfs.img, modules/RELEASE and
# config. See docs/manual-images.md.
set -euo pipefail
shopt -s inherit_errexit

prog=void-kernel
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VOID_KERNEL_PKG=${VOID_KERNEL_PKG:-linux6.12}
VOID_ARCH=${VOID_ARCH:-x86_64}

usage() {
	cat >&2 <<USAGE
usage: $prog.sh

Downloads the $VOID_KERNEL_PKG package from $VOID_MIRROR/current (checked
against the repository index's sha256 and size) and writes
$MANUAL_DIR/void-kernel/:
  vmlinux         the uncompressed ELF kernel (Firecracker boots this)
  vmlinuz         the package's bzImage (QEMU boots it too)
  initramfs.img   busybox + the virtio/ext4/vsock modules, then switch_root
  modules/REL/    the modules, uncompressed, with modules.dep
  config          the kernel configuration
  info.txt        where it came from

Environment: VOID_MIRROR (default https://repo-default.voidlinux.org),
VOID_KERNEL_PKG (default linux6.12), MANUAL_DIR, BUSYBOX.
Needs network access to the mirror; root is not needed.
USAGE
	exit 2
}

[ $# = 0 ] || usage
[ "$VOID_ARCH" = x86_64 ] || die "only VOID_ARCH=x86_64 is supported"
require_tools curl:curl tar:tar zstd:zstd xz:xz-utils gzip:gzip python3:python3 \
	depmod:kmod readelf:binutils sha256sum:coreutils

make_workdir
pkgver=$(void_fetch_package "$VOID_ARCH" "$VOID_KERNEL_PKG" "$WORK/pkg")
info "unpacked $pkgver"
version=${pkgver#"$VOID_KERNEL_PKG"-}

vmlinuz=
for f in "$WORK/pkg/boot/vmlinuz-$version" "$WORK"/pkg/boot/vmlinuz*; do
	if [ -f "$f" ]; then
		vmlinuz=$f
		break
	fi
done
[ -n "$vmlinuz" ] || die "$pkgver has no boot/vmlinuz-*"

stage_kernel "$WORK/pkg" "$vmlinuz" "$WORK/void-kernel"
cat >"$WORK/void-kernel/info.txt" <<INFO
package=$pkgver
release=$KERNEL_RELEASE
source=$VOID_MIRROR/current/$pkgver.$VOID_ARCH.xbps
INFO
install_dir "$WORK/void-kernel" "$MANUAL_DIR/void-kernel"
info "wrote $MANUAL_DIR/void-kernel (kernel $KERNEL_RELEASE); next: sudo make rootfs-void, then make void-register"
