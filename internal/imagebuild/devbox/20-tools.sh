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
			install -m 0755 "$tmp/$7" "$prefix/bin/.$1.new" && mv -f "$prefix/bin/.$1.new" "$prefix/bin/$1" || rc=1
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
		# npm ci installs exactly the lockfile and checks every tarball
		# against its integrity. Install scripts are not run: they would
		# fetch prebuilt binaries from outside the registry. npm's cache
		# stays in the step's temporary directory, out of /root.
		dest=$prefix/lib/banger-$1
		if ! [ -x "$prefix/bin/node" ] || ! [ -e "$prefix/bin/npm" ]; then
			echo "$1 needs node and npm, which are missing" >&2
			rc=1
		elif rm -rf "$dest" && mkdir -p "$dest" && lockfile "$6" package.json >"$dest/package.json" &&
			lockfile "$6" package-lock.json >"$dest/package-lock.json" &&
			(cd "$dest" && PATH="$prefix/bin:$PATH" npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
				--registry "$NPM_REGISTRY/" --cache "$tmp/npm-cache") &&
			[ -e "$dest/$7" ]; then
			ln -sf "$dest/$7" "$prefix/bin/$1" || rc=1
		else
			rc=1
		fi
		;;
	esac
	rm -rf "$tmp"
	return "$rc"
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
