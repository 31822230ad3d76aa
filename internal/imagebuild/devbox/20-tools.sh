# banger devbox: coding tools from the npm registry. mise, opencode,
# claude and pi (with the node and npm it runs on) on glibc images;
# opencode only on musl (Alpine). Every package is pinned in the devbox
# tools manifest (pins, above) to a version and the registry's SHA-512
# integrity: a tarball that does not match is refused. Downloads go
# through http_proxy/https_proxy when the build passes them.
# BANGER_BEST_EFFORT=1 turns a failed download into a warning; the image
# then records which tools it lacks.
set -eu

prefix=${BANGER_TOOLS_PREFIX:-/usr/local}
roothome=${BANGER_ROOT_HOME:-/root}
record=$prefix/share/banger/devbox-tools

fail() {
	if [ "${BANGER_BEST_EFFORT:-}" = 1 ]; then
		echo "warning: $* (skipped; rebuild with access to the npm registry to get it)" >&2
		return 0
	fi
	echo "$*" >&2
	exit 1
}

arch=$(uname -m)
libc=glibc
for f in /lib/ld-musl-*.so.1; do
	[ -e "$f" ] && libc=musl
done

# fetch PACKAGE VERSION SHA512 OUT: the package's registry tarball in OUT,
# checked against the pinned SHA-512. A mismatch removes OUT.
fetch() {
	base=${1##*/}
	url="$NPM_REGISTRY/$1/-/$base-$2.tgz"
	echo "fetching $1@$2"
	if ! curl -fsSL --retry 2 --max-filesize 1073741824 -o "$4" "$url"; then
		echo "downloading $url failed" >&2
		rm -f "$4"
		return 1
	fi
	got=$(sha512sum "$4" | cut -d' ' -f1)
	if [ "$got" != "$3" ]; then
		echo "$1@$2: the tarball's sha512 $got is not the pinned $3; refusing it" >&2
		rm -f "$4"
		return 1
	fi
}

# install_pin TOOL KIND PACKAGE VERSION SHA512 LOCK PATH
install_pin() {
	# Not /tmp: a tmpfs there would hold the largest tarball and its
	# unpacked content in memory.
	tmp=$(mktemp -d "${BANGER_TOOLS_TMP:-/var/tmp}/banger-tools.XXXXXX")
	rc=0
	case "$2" in
	bin)
		if fetch "$3" "$4" "$5" "$tmp/p.tgz" && tar -xzf "$tmp/p.tgz" -C "$tmp" "$7" && [ -f "$tmp/$7" ]; then
			mkdir -p "$prefix/bin"
			# chmod and mv, not install: not every busybox has it, and a
			# rename (tmp is on the same filesystem) does not copy the
			# hundreds of MB of claude or opencode again.
			chmod 0755 "$tmp/$7" && mv -f "$tmp/$7" "$prefix/bin/.$1.new" &&
				mv -f "$prefix/bin/.$1.new" "$prefix/bin/$1" || rc=1
		else
			rc=1
		fi
		;;
	dir)
		dest=$prefix/lib/node_modules/$3
		if fetch "$3" "$4" "$5" "$tmp/p.tgz" && tar -xzf "$tmp/p.tgz" -C "$tmp" && [ -f "$tmp/package/$7" ]; then
			rm -rf "$dest" && mkdir -p "${dest%/*}" "$prefix/bin" && mv "$tmp/package" "$dest" &&
				ln -sf "$dest/$7" "$prefix/bin/$1" || rc=1
		else
			rc=1
		fi
		;;
	lock)
		dest=$prefix/lib/banger-$1
		if ! [ -x "$prefix/bin/node" ]; then
			echo "$1 needs node, which is missing" >&2
			rc=1
		elif install_lock "$6" "$tmp/lock" "$tmp" && [ -e "$tmp/lock/$7" ] &&
			rm -rf "$dest" && mkdir -p "${dest%/*}" "$prefix/bin" && mv "$tmp/lock" "$dest"; then
			ln -sf "$dest/$7" "$prefix/bin/$1" || rc=1
		else
			rc=1
		fi
		;;
	esac
	rm -rf "$tmp"
	return "$rc"
}

# install_lock LOCK DEST TMP: the lockfile's packages in DEST as npm ci
# would put them, without npm: npm and node starting under an emulated CPU
# take minutes. One curl fetches every tarball (in parallel where curl can),
# one sha512sum checks them all against the lockfile's integrity, and each
# is unpacked in its node_modules directory; the top-level packages' bin
# links follow. Install scripts are not run (npm ci --ignore-scripts).
install_lock() {
	lockpkgs "$1" "$arch" "$libc" >"$3/list" || {
		echo "the $1 lockfile has no install for $arch ($libc)" >&2
		return 1
	}
	mkdir -p "$2/node_modules/.bin" "$3/t" &&
		lockfile "$1" package.json >"$2/package.json" || return 1
	: >"$3/curl"
	: >"$3/sums"
	n=0
	while read -r what a b c d; do
		[ "$what" = pkg ] || continue
		n=$((n + 1))
		printf 'url = "%s/%s"\noutput = "%s/t/%s"\n' "$NPM_REGISTRY" "$b" "$3" "$d" >>"$3/curl"
		printf '%s  %s/t/%s\n' "$c" "$3" "$d" >>"$3/sums"
	done <"$3/list"
	echo "fetching the $n packages of $1's lockfile"
	par=
	if curl --help all 2>/dev/null | grep -q -e '--parallel-max'; then
		par="--parallel --parallel-max 8 --no-progress-meter"
	fi
	# shellcheck disable=SC2086
	if ! curl -fsSL --retry 2 --max-filesize 268435456 $par -K "$3/curl"; then
		echo "downloading the packages of $1's lockfile failed" >&2
		return 1
	fi
	if ! sha512sum -c --quiet "$3/sums" >&2; then
		echo "$1: a package's sha512 is not the integrity its lockfile pins; refusing it" >&2
		return 1
	fi
	# Every directory in one mkdir; then two lanes of tar (builder VMs have
	# two CPUs, and each tar costs a process or two, slow to start under
	# emulation), both awaited.
	sed -n 's/^pkg \([^ ]*\) .*/\1/p' "$3/list" | (cd "$2" && xargs mkdir -p) || return 1
	unpack_lane "$3/list" "$2" "$3" 0 &
	lane0=$!
	unpack_lane "$3/list" "$2" "$3" 1 &
	lane1=$!
	lanes=0
	wait "$lane0" || lanes=1
	wait "$lane1" || lanes=1
	[ "$lanes" = 0 ] || return 1
	while read -r what a b c d; do
		[ "$what" = bin ] || continue
		ln -sf "$b" "$2/node_modules/.bin/$a" && chmod 0755 "$2/node_modules/.bin/$b" || return 1
	done <"$3/list"
}

# unpack_lane LIST DEST TMP LANE: every other package of LIST (LANE 0 or 1)
# unpacked in its directory under DEST.
unpack_lane() {
	i=0
	while read -r what a b c d; do
		[ "$what" = pkg ] || continue
		i=$((i + 1))
		[ $((i % 2)) = "$4" ] || continue
		tar -xzf "$3/t/$d" -C "$2/$a" --strip-components=1 --no-same-owner --no-same-permissions --warning=no-unknown-keyword || return 1
	done <"$1"
}

mkdir -p "${record%/*}"
: >"$record.new"
found=0
while read -r tool parch plibc kind pkg ver sum lock path; do
	[ "$parch" = "$arch" ] && [ "$plibc" = "$libc" ] || continue
	found=1
	if [ "$kind" = none ]; then
		# The manifest says why (its reason); the image lacks the tool.
		echo "note: $tool is not available for $arch ($libc) from the npm registry; the image will not have it" >&2
		continue
	fi
	if [ -e "$prefix/bin/$tool" ] && grep -qs "^$tool $ver $pkg " "$record"; then
		echo "$tool $ver $pkg $sum" >>"$record.new"
		continue
	fi
	if install_pin "$tool" "$kind" "$pkg" "$ver" "$sum" "$lock" "$path"; then
		echo "$tool $ver $pkg $sum" >>"$record.new"
		echo "installed $tool $ver"
	else
		fail "could not install $tool ($pkg@$ver)"
	fi
done <<EOF
$(pins)
EOF
mv -f "$record.new" "$record"
[ "$found" = 1 ] || fail "no coding tools are pinned for $arch ($libc)"

if [ -x "$prefix/bin/mise" ] && [ -d "$roothome" ] && ! grep -qs 'mise activate' "$roothome/.bashrc"; then
	echo 'eval "$(mise activate bash)"' >>"$roothome/.bashrc"
fi
