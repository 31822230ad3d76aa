# banger devbox: coding tools. mise, opencode, claude and pi on glibc
# images; opencode only on Alpine. Needs the network in the builder VM.
# BANGER_BEST_EFFORT=1 turns a failed download into a warning.
set -eu

fail() {
	if [ "${BANGER_BEST_EFFORT:-}" = 1 ]; then
		echo "warning: $* (skipped; rebuild with network access to get it)" >&2
		return 0
	fi
	echo "$*" >&2
	exit 1
}

arch=$(uname -m)
case "$arch" in
x86_64) npmarch=x64 ;;
aarch64) npmarch=arm64 ;;
*) fail "no coding tools for architecture $arch"; exit 0 ;;
esac

# npm_bin PACKAGE FILE: the standalone binary FILE from the npm package,
# fetched from the registry without node.
npm_bin() {
	meta=$(curl -fsSL "https://registry.npmjs.org/$1/latest") || return 1
	url=$(printf '%s' "$meta" | sed -n 's/.*"tarball":"\([^"]*\)".*/\1/p' | head -n1)
	[ -n "$url" ] || return 1
	tmp=$(mktemp -d)
	if curl -fsSL "$url" | tar -xz -C "$tmp" && [ -f "$tmp/package/bin/$2" ]; then
		install -m 0755 "$tmp/package/bin/$2" "/usr/local/bin/$2"
		rm -rf "$tmp"
		return 0
	fi
	rm -rf "$tmp"
	return 1
}

# installer URL SHELL [NAME=value...]: downloads URL's install script to a
# file, then runs it with SHELL. Piping curl into a shell would take the
# shell's exit status, and a shell reading nothing succeeds: a failed
# download would pass unnoticed.
installer() {
	url=$1 shell=$2
	shift 2
	script=$(mktemp) || return 1
	if ! curl -fsSL "$url" -o "$script" || ! [ -s "$script" ]; then
		echo "downloading $url failed" >&2
		rm -f "$script"
		return 1
	fi
	if env "$@" "$shell" "$script"; then rc=0; else rc=$?; fi
	rm -f "$script"
	return "$rc"
}

if [ -f /etc/alpine-release ]; then
	command -v opencode >/dev/null 2>&1 || npm_bin "opencode-linux-$npmarch-musl" opencode || fail "could not download opencode"
	exit 0
fi

command -v opencode >/dev/null 2>&1 || npm_bin "opencode-linux-$npmarch" opencode || fail "could not download opencode"

if ! command -v mise >/dev/null 2>&1; then
	if ! installer https://mise.run sh MISE_INSTALL_PATH=/usr/local/bin/mise || ! [ -x /usr/local/bin/mise ]; then
		fail "could not install mise"
	fi
fi
if command -v mise >/dev/null 2>&1 && ! grep -qs 'mise activate' /root/.bashrc; then
	echo 'eval "$(mise activate bash)"' >>/root/.bashrc
fi

if ! command -v claude >/dev/null 2>&1; then
	if installer https://claude.ai/install.sh bash && [ -x /root/.local/bin/claude ]; then
		ln -sf /root/.local/bin/claude /usr/local/bin/claude
	else
		fail "could not install claude"
	fi
fi

if ! command -v pi >/dev/null 2>&1; then
	if command -v mise >/dev/null 2>&1 && mise use -g node@lts && mise exec node@lts -- npm install -g @mariozechner/pi-coding-agent; then
		pi=$(mise exec node@lts -- sh -c 'command -v pi') && ln -sf "$pi" /usr/local/bin/pi
	else
		fail "could not install pi"
	fi
fi
