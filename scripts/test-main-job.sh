#!/usr/bin/env bash
# test-main-job.sh: offline tests of scripts/main-job (what 'make run' runs
# after installing) with a stand-in banger that records its calls. Checks:
# it runs 'vm run' on the checkout and passes its exit status on; when the
# install directory is not on PATH it ends with the exact commands that
# add it, and says nothing of the kind when it is.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/banger-main-job.XXXXXX")
trap 'rm -rf "$T"' EXIT
passed=0 failed=0
ok() { echo "ok    $1"; passed=$((passed + 1)); }
bad() { echo "FAIL  $1"; failed=$((failed + 1)); }

home=$T/home bindir=$T/home/.local/bin
mkdir -p "$bindir" "$home/.config/banger"
echo 'vmm = "qemu"' >"$home/.config/banger/config.toml"
cat >"$bindir/banger" <<'STUB'
#!/bin/sh
echo "$*" >>"$BANGER_CALLS"
case "$1 $2" in
"config show") echo 'default_image_name = "default"' ;;
"vm run") exit "${BANGER_RUN_STATUS:-0}" ;;
esac
exit 0
STUB
chmod +x "$bindir/banger"
# as_root uses sudo unless root: a stand-in sudo runs the command.
mkdir -p "$T/sudo"
printf '#!/bin/sh\nexec "$@"\n' >"$T/sudo/sudo"
chmod +x "$T/sudo/sudo"

# run PATH [STATUS]: main-job with PATH, 'vm run' exiting STATUS.
run() {
	: >"$T/calls"
	env -i HOME="$home" PATH="$1" BINDIR="$bindir" BANGER_CALLS="$T/calls" BANGER_RUN_STATUS="${2:-0}" \
		bash "$here/main-job" >"$T/out" 2>&1
}

base="$T/sudo:/usr/bin:/bin"
if run "$base"; then ok "runs to the end"; else bad "runs to the end: $(cat "$T/out")"; fi
if grep -qx 'vm run .' "$T/calls"; then ok "runs vm run on the checkout"; else bad "runs vm run on the checkout: $(cat "$T/calls")"; fi
# shellcheck disable=SC2016 # the literal lines main-job prints
if grep -qF 'export PATH="$HOME/.local/bin:$PATH"' "$T/out" && grep -qF ">> ~/.profile" "$T/out" && [ "$(tail -n1 "$T/out" | grep -c profile)" = 1 ]; then
	ok "ends with the PATH command when $bindir is not on PATH"
else
	bad "ends with the PATH command when $bindir is not on PATH: $(cat "$T/out")"
fi
if run "$bindir:$base" && ! grep -q "not on your PATH" "$T/out"; then
	ok "no PATH advice when it is on PATH"
else
	bad "no PATH advice when it is on PATH: $(cat "$T/out")"
fi
status=0
run "$base" 3 || status=$?
if [ "$status" = 3 ] && grep -q "not on your PATH" "$T/out"; then
	ok "a failed vm run keeps its status and still gets the PATH advice"
else
	bad "a failed vm run keeps its status ($status) and still gets the PATH advice: $(cat "$T/out")"
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
