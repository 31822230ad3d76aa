#!/usr/bin/env bash
# rootfs-alpine.sh builds an experimental Alpine Linux image for banger from
# the pinned release's minirootfs: MANUAL_DIR/rootfs-alpine.ext4 (the root
# filesystem) and MANUAL_DIR/rootfs-alpine.work-seed.ext4 (its /root, the
# seed of each VM's work disk). See docs/manual-images.md.
set -euo pipefail
shopt -s inherit_errexit

prog=rootfs-alpine
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ALPINE_RELEASE=${ALPINE_RELEASE:-3.20.3}
ALPINE_ARCH=${ALPINE_ARCH:-x86_64}
# Set ALPINE_PACKAGES= (empty) to install nothing.
ALPINE_PACKAGES=${ALPINE_PACKAGES-openrc openssh git curl ca-certificates bash}
# auto: install opencode if it can be downloaded; 1: fail without it; 0: skip.
ALPINE_OPENCODE=${ALPINE_OPENCODE:-auto}
OPENCODE_NPM_PACKAGE=${OPENCODE_NPM_PACKAGE:-opencode-linux-x64-musl}

usage() {
	cat >&2 <<USAGE
usage: sudo $prog.sh [--size SIZE]

Downloads alpine-minirootfs-$ALPINE_RELEASE-$ALPINE_ARCH.tar.gz from
$ALPINE_MIRROR/vX.Y/releases/$ALPINE_ARCH (verified against its .sha256),
unpacks it with its owners, installs packages with apk in a chroot, sets it
up for banger (sshd: root with a key only, enabled in openrc; root password
locked; opencode and its openrc service on 0.0.0.0:4096, best-effort) and
writes $MANUAL_DIR/rootfs-alpine.ext4 and rootfs-alpine.work-seed.ext4.

  --size SIZE   rootfs size, e.g. 4G (default: content + 25% + 1 GiB; sparse)

Environment: ALPINE_RELEASE (default 3.20.3), ALPINE_MIRROR,
ALPINE_PACKAGES (default "openrc openssh git curl ca-certificates bash";
empty installs nothing), ALPINE_OPENCODE (auto, 1 or 0), NPM_REGISTRY,
MANUAL_DIR. Needs root and network access to the mirror (and to the npm
registry for opencode).
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
case $ALPINE_OPENCODE in
auto | 0 | 1) ;;
*) die "ALPINE_OPENCODE=$ALPINE_OPENCODE: want auto, 1 or 0" ;;
esac
[ "$ALPINE_ARCH" = x86_64 ] || die "only ALPINE_ARCH=x86_64 is supported"

branch=$(alpine_branch "$ALPINE_RELEASE")
require_root "$prog" "unpack the Alpine root filesystem with its owners and run apk in it"
tools=(curl:curl tar:tar gzip:gzip sha256sum:coreutils mkfs.ext4:e2fsprogs chroot:coreutils mount:mount mknod:coreutils)
[ "$ALPINE_OPENCODE" = 0 ] || tools+=(python3:python3 sha512sum:coreutils)
require_tools "${tools[@]}"

make_workdir
name="alpine-minirootfs-$ALPINE_RELEASE-$ALPINE_ARCH.tar.gz"
base="$ALPINE_MIRROR/$branch/releases/$ALPINE_ARCH"
fetch "$base/$name.sha256" "$WORK/$name.sha256"
sum=$(sum_for "$WORK/$name.sha256" "$name")
[ -n "$sum" ] || die "$base/$name.sha256 has no checksum for $name"
fetch_verified "$base/$name" "$WORK/$name" sha256 "$sum"

root="$WORK/root"
info "unpacking $name"
unpack_rootfs "$WORK/$name" "$root"
mkdir -p "$root/etc/apk"
printf '%s\n' "$ALPINE_MIRROR/$branch/main" "$ALPINE_MIRROR/$branch/community" >"$root/etc/apk/repositories"

packages=$ALPINE_PACKAGES
opencode=0
if [ "$ALPINE_OPENCODE" != 0 ]; then
	mkdir -p "$root/usr/local/bin"
	if npm_fetch_bin "$OPENCODE_NPM_PACKAGE" opencode "$root/usr/local/bin/opencode"; then
		opencode=1
		# The musl build links libstdc++; opencode searches with ripgrep.
		[ -z "${packages// /}" ] || packages+=" libstdc++ libgcc ripgrep"
	elif [ "$ALPINE_OPENCODE" = 1 ]; then
		die "could not install opencode ($OPENCODE_NPM_PACKAGE from $NPM_REGISTRY) and ALPINE_OPENCODE=1"
	else
		warn "could not download opencode; the image is built without it (ALPINE_OPENCODE=1 makes this an error)"
	fi
fi

if [ -n "${packages// /}" ]; then
	chroot_enter "$root"
	info "installing $packages"
	# shellcheck disable=SC2086 # a list of package names
	in_chroot "$root" apk add --no-cache $packages || die "apk add failed in the Alpine chroot"
	chroot_leave "$root"
fi
rm -rf "${root:?}"/var/cache/apk/*

[ -f "$root/usr/sbin/sshd" ] || die "the rootfs has no sshd; keep openssh in ALPINE_PACKAGES"
configure_sshd "$root"

# openrc_enable RUNLEVEL SERVICE...: enables the services the image has.
openrc_enable() {
	local level=$1 s
	shift
	mkdir -p "$root/etc/runlevels/$level"
	for s in "$@"; do
		if [ -e "$root/etc/init.d/$s" ]; then
			ln -sfn "/etc/init.d/$s" "$root/etc/runlevels/$level/$s"
		fi
	done
}

if [ "$opencode" = 1 ]; then
	cat >"$root/etc/init.d/opencode" <<'RC'
#!/sbin/openrc-run
# Written by banger's manual image flow: the opencode server for banger.
description="opencode server on 0.0.0.0:4096"
export HOME=/root
command=/usr/local/bin/opencode
command_args="serve --hostname 0.0.0.0 --port 4096"
command_background=true
pidfile=/run/opencode.pid
directory=/root
output_log=/var/log/opencode.log
error_log=/var/log/opencode.log
depend() { use net; after sshd; }
RC
	chmod 0755 "$root/etc/init.d/opencode"
fi
# Used when the image's own init (openrc) runs. Under banger the agent is
# PID 1 (the image has no systemd) and starts sshd itself.
[ -e "$root/etc/init.d/sshd" ] || die "the rootfs has no /etc/init.d/sshd (install openrc and openssh)"
openrc_enable sysinit devfs dmesg mdev hwdrivers
openrc_enable boot modules sysctl hostname bootmisc syslog
openrc_enable default sshd opencode
openrc_enable shutdown mount-ro killprocs savecache
lock_root_password "$root"
prepare_banger_paths "$root"

make_rootfs_outputs "$root" rootfs-alpine "$size"
info "next: make alpine-kernel (if not done), then make alpine-register"
