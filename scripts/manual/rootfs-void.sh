#!/usr/bin/env bash
# rootfs-void.sh builds an experimental Void Linux image for banger from the
# official ROOTFS tarball: MANUAL_DIR/rootfs-void.ext4 (the root
# filesystem) and MANUAL_DIR/rootfs-void.work-seed.ext4 (its /root, the
# seed of each VM's work disk). See docs/manual-images.md.
set -euo pipefail
shopt -s inherit_errexit

prog=rootfs-void
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VOID_ARCH=${VOID_ARCH:-x86_64}
VOID_DEFAULT_MIRROR=https://repo-default.voidlinux.org
# Set VOID_PACKAGES= (empty) to install nothing.
VOID_PACKAGES=${VOID_PACKAGES-openssh git curl ca-certificates bash iproute2}
VOID_UPDATE=${VOID_UPDATE:-1}
VOID_ROOTFS=${VOID_ROOTFS:-}

usage() {
	cat >&2 <<USAGE
usage: sudo $prog.sh [--size SIZE]

Downloads the newest void-$VOID_ARCH-ROOTFS-<date>.tar.xz listed in
$VOID_MIRROR/live/current/sha256sum.txt (verified against it), unpacks it
with its owners, installs packages with xbps-install in a chroot, sets it
up for banger (sshd: root with a key only, enabled as a runit service; root
password locked) and writes $MANUAL_DIR/rootfs-void.ext4 and
rootfs-void.work-seed.ext4.

  --size SIZE   rootfs size, e.g. 4G (default: content + 25% + 1 GiB; sparse)

Environment: VOID_MIRROR, VOID_ROOTFS (pin a tarball name),
VOID_PACKAGES (default "openssh git curl ca-certificates bash iproute2";
empty installs nothing), VOID_UPDATE=0 (skip the full system update),
MANUAL_DIR. Needs root and network access to the mirror.
USAGE
	exit 2
}

size=
while [ $# -gt 0 ]; do
	case $1 in
	--size)
		[ $# -ge 2 ] || usage
		size=$2
		shift 2
		;;
	*) usage ;;
	esac
done

require_root "$prog" "unpack the Void root filesystem with its owners and run xbps-install in it"
require_tools curl:curl tar:tar xz:xz-utils sha256sum:coreutils mkfs.ext4:e2fsprogs \
	chroot:coreutils mount:mount mknod:coreutils

make_workdir
fetch "$VOID_MIRROR/live/current/sha256sum.txt" "$WORK/sha256sum.txt"
name=${VOID_ROOTFS:-$(void_pick_rootfs "$WORK/sha256sum.txt" "$VOID_ARCH")}
[ -n "$name" ] || die "no void-$VOID_ARCH-ROOTFS-<date>.tar.xz in $VOID_MIRROR/live/current/sha256sum.txt"
sum=$(sum_for "$WORK/sha256sum.txt" "$name")
[ -n "$sum" ] || die "$name has no checksum in $VOID_MIRROR/live/current/sha256sum.txt"
fetch_verified "$VOID_MIRROR/live/current/$name" "$WORK/$name" sha256 "$sum"

root="$WORK/root"
info "unpacking $name"
unpack_rootfs "$WORK/$name" "$root"

# xbps exits 17 (EEXIST) when there is nothing to update.
xbps() {
	local rc=0
	in_chroot "$root" "$@" || rc=$?
	[ "$rc" = 0 ] || [ "$rc" = 17 ] || die "'$*' failed in the Void chroot (exit status $rc)"
}

if [ -n "${VOID_PACKAGES// /}" ]; then
	if [ "$VOID_MIRROR" != "$VOID_DEFAULT_MIRROR" ]; then
		mkdir -p "$root/etc/xbps.d"
		echo "repository=$VOID_MIRROR/current" >"$root/etc/xbps.d/00-repository-main.conf"
	fi
	chroot_enter "$root"
	info "updating xbps"
	xbps xbps-install -S -y -u xbps
	if [ "$VOID_UPDATE" = 1 ]; then
		info "updating the system"
		xbps xbps-install -y -u
	fi
	missing=()
	for p in $VOID_PACKAGES; do
		in_chroot "$root" xbps-query "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		info "installing ${missing[*]}"
		xbps xbps-install -y "${missing[@]}"
	fi
	xbps xbps-remove -O -y
	chroot_leave "$root"
fi
rm -rf "${root:?}"/var/cache/xbps/*

[ -f "$root/usr/bin/sshd" ] || [ -f "$root/usr/sbin/sshd" ] ||
	die "the rootfs has no sshd; keep openssh in VOID_PACKAGES"
configure_sshd "$root"
# runit: sshd starts when the image's own init runs it. Under banger the
# agent is PID 1 (the image has no systemd) and starts sshd itself.
[ -d "$root/etc/sv/sshd" ] || die "the rootfs has no /etc/sv/sshd (openssh's runit service)"
mkdir -p "$root/etc/runit/runsvdir/default"
ln -sfn /etc/sv/sshd "$root/etc/runit/runsvdir/default/sshd"
lock_root_password "$root"
prepare_banger_paths "$root"

make_rootfs_outputs "$root" rootfs-void "$size"
info "next: make void-kernel (if not done), then make void-register"
