#!/usr/bin/env bash
# test-main-job.sh: offline tests of scripts/main-job (what 'make run' runs
# after installing) with a stand-in banger that records its calls. Checks:
# it runs 'vm run' on the checkout and passes its exit status on; when the
# install directory is not on PATH it ends with the exact commands that
# add it, and says nothing of the kind when it is; with no vmm in the
# config it picks the driver from stand-ins for /dev/kvm, firecracker and
# the config's default_kernel_ref, and says why QEMU when it is QEMU.
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

# pick KVM FC KERNEL: main-job on a config without vmm, with a usable
# stand-in /dev/kvm when KVM=yes, a stand-in firecracker on PATH when
# FC=yes, and default_kernel_ref set when KERNEL=yes.
pick() {
	: >"$home/.config/banger/config.toml"
	[ "$3" = yes ] && echo 'default_kernel_ref = "firecracker-6.1-x86_64"' >"$home/.config/banger/config.toml"
	rm -rf "$T/fc" "$T/kvm"
	mkdir -p "$T/fc"
	if [ "$2" = yes ]; then printf '#!/bin/sh\nexit 0\n' >"$T/fc/firecracker" && chmod +x "$T/fc/firecracker"; fi
	kvm=$T/kvm
	if [ "$1" = yes ]; then : >"$kvm" && chmod 0666 "$kvm"; fi
	: >"$T/calls"
	env -i HOME="$home" PATH="$bindir:$T/fc:$base" BINDIR="$bindir" BANGER_CALLS="$T/calls" BANGER_KVM_DEVICE="$kvm" \
		bash "$here/main-job" >"$T/out" 2>&1
}
chose() { grep -qx "vmm = \"$1\"" "$home/.config/banger/config.toml"; }
pick yes yes no
if chose qemu && grep -q "KVM and Firecracker ($T/fc/firecracker) are here, but no Firecracker kernel" "$T/out" &&
	grep -q "Using the QEMU driver" "$T/out" && grep -q "banger kernel pull REF" "$T/out" &&
	grep -q "scripts/build-firecracker-kernel" "$T/out" && grep -q 'default_kernel_ref = "NAME"' "$T/out"; then
	ok "KVM and firecracker but no kernel: QEMU, saying why and how to get a Firecracker kernel"
else
	bad "KVM and firecracker but no kernel: QEMU, saying why and how to get a Firecracker kernel: $(cat "$T/out")"
fi
pick yes yes yes
if chose firecracker && ! grep -q "QEMU" "$T/out"; then ok "KVM, firecracker and a kernel: Firecracker"; else bad "KVM, firecracker and a kernel: Firecracker: $(cat "$T/out")"; fi
pick no yes yes
if chose qemu && grep -q "no usable $T/kvm here" "$T/out" && ! grep -q "no Firecracker kernel" "$T/out"; then
	ok "no KVM: QEMU with software emulation, saying so"
else
	bad "no KVM: QEMU with software emulation, saying so: $(cat "$T/out")"
fi
pick yes no no
if chose qemu && ! grep -q "Firecracker kernel" "$T/out"; then ok "KVM without firecracker: QEMU, no kernel advice"; else bad "KVM without firecracker: QEMU, no kernel advice: $(cat "$T/out")"; fi
echo 'vmm = "qemu"' >"$home/.config/banger/config.toml"

echo
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
