#!/usr/bin/env bash
# rootfs-docker.sh rebuilds a Debian-style rootfs into a banger devbox with
# Docker, using banger itself: the base files are registered as a temporary
# image, 'banger image build --docker' provisions it in builder VMs, and the
# result is copied to MANUAL_DIR/rootfs-docker.ext4 and
# MANUAL_DIR/rootfs-docker.work-seed.ext4. The temporary images are deleted
# on success, failure or interrupt. See docs/manual-images.md.
set -euo pipefail
shopt -s inherit_errexit

prog=rootfs
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
	cat >&2 <<USAGE
usage: $prog-docker.sh --base-rootfs ROOTFS --kernel KERNEL [--initrd FILE]
       [--modules DIR] [--script FILE]...
  (from make: make rootfs ARGS='--base-rootfs /abs/rootfs.ext4 --kernel /abs/vmlinux ...')

  --base-rootfs ROOTFS  ext4 root filesystem to start from (Debian/Ubuntu)
  --kernel KERNEL       kernel it boots with (ELF vmlinux or bzImage)
  --initrd FILE         initrd, if the kernel needs one
  --modules DIR         kernel modules directory (holds RELEASE/)
  --script FILE         extra provisioning script run after the devbox
                        steps (repeatable)

Writes $MANUAL_DIR/rootfs-docker.ext4 and rootfs-docker.work-seed.ext4.
Environment: BANGER (the banger CLI; default build/bin/banger, else banger
on PATH), MANUAL_DIR. The builder VMs need network access.
USAGE
	exit 2
}

# abs_path FLAG PATH file|dir: PATH made absolute; dies unless it is a file
# (or a directory).
abs_path() {
	local flag=$1 path=$2 kind=$3
	[ -n "$path" ] || usage
	case $kind in
	file) [ -f "$path" ] || die "$flag $path: no such file" ;;
	dir) [ -d "$path" ] || die "$flag $path: no such directory" ;;
	esac
	realpath -- "$path"
}

base_rootfs='' kernel='' initrd='' modules='' scripts=()
while [ $# -gt 0 ]; do
	[ $# -ge 2 ] || usage
	case $1 in
	--base-rootfs) base_rootfs=$(abs_path "$1" "$2" file) ;;
	--kernel) kernel=$(abs_path "$1" "$2" file) ;;
	--initrd) initrd=$(abs_path "$1" "$2" file) ;;
	--modules) modules=$(abs_path "$1" "$2" dir) ;;
	--script) scripts+=("$(abs_path "$1" "$2" file)") ;;
	*) usage ;;
	esac
	shift 2
done
[ -n "$base_rootfs" ] || { echo "$prog: --base-rootfs is required" >&2; usage; }
[ -n "$kernel" ] || { echo "$prog: --kernel is required" >&2; usage; }

if [ -z "${BANGER:-}" ]; then
	if [ -x "$repo_root/build/bin/banger" ]; then
		BANGER=$repo_root/build/bin/banger
	else
		BANGER=$(command -v banger) || die "no banger CLI: run 'make build' (or set BANGER=/path/to/banger)"
	fi
fi
[ -x "$BANGER" ] || die "BANGER=$BANGER is not an executable; run 'make build'"
require_tools cp:coreutils python3:python3

make_workdir
suffix=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
base_image="manual-base-$suffix"
built_image="manual-docker-$suffix"

# delete_image NAME: removes a temporary image if it exists.
delete_image() {
	if "$BANGER" image show "$1" >/dev/null 2>&1; then
		"$BANGER" image delete "$1" >/dev/null || warn "could not delete temporary image $1; remove it with: banger image delete $1"
	fi
}
on_exit "delete_image $base_image"

info "registering $base_rootfs as temporary image $base_image"
args=(image register --name "$base_image" --rootfs "$base_rootfs" --kernel "$kernel")
[ -z "$initrd" ] || args+=(--initrd "$initrd")
[ -z "$modules" ] || args+=(--modules "$modules")
"$BANGER" "${args[@]}" >/dev/null || die "banger image register failed (see above)"

info "building $built_image from $base_image with Docker (this boots builder VMs)"
on_exit "delete_image $built_image"
args=(image build --name "$built_image" --from-image "$base_image" --docker)
for s in "${scripts[@]}"; do
	args+=(--script "$s")
done
"$BANGER" "${args[@]}" || die "banger image build failed (see above)"

"$BANGER" image show "$built_image" --json >"$WORK/image.json" || die "banger image show $built_image failed"
read -r rootfs work_seed < <(python3 -c '
import json, sys
im = json.load(open(sys.argv[1]))
print(im.get("rootfs") or "-", im.get("work_seed") or "-")
' "$WORK/image.json") || die "cannot read banger image show --json output"
if [ "$rootfs" = - ] || [ ! -f "$rootfs" ]; then
	die "image $built_image has no rootfs file (${rootfs/#-/none})"
fi
if [ "$work_seed" = - ] || [ ! -f "$work_seed" ]; then
	die "image $built_image has no work-seed file (${work_seed/#-/none}); banger image build should have made one"
fi

info "copying the built files"
cp --sparse=always -- "$rootfs" "$WORK/rootfs-docker.ext4"
cp --sparse=always -- "$work_seed" "$WORK/rootfs-docker.work-seed.ext4"
install_file "$WORK/rootfs-docker.ext4" "$MANUAL_DIR/rootfs-docker.ext4"
install_file "$WORK/rootfs-docker.work-seed.ext4" "$MANUAL_DIR/rootfs-docker.work-seed.ext4"
info "wrote $MANUAL_DIR/rootfs-docker.ext4 and $MANUAL_DIR/rootfs-docker.work-seed.ext4"
