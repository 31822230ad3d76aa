#!/usr/bin/env bash
# test.sh: offline tests of the manual image flows in scripts/manual.
#
# Nothing here touches the network: the script generates fixtures (an xbps
# repository with a kernel package, an Alpine repository with APKINDEX and a
# linux-virt apk, Void and Alpine root filesystem tarballs, an npm package)
# and serves them on 127.0.0.1; the flows are pointed at them with
# VOID_MIRROR, ALPINE_MIRROR and NPM_REGISTRY. `banger` is a stub.
#
# It checks: bash -n and shellcheck (when installed) on every script; the
# download+verify helper (good, bad sha256, bad size, 404, file://); the
# xbps repodata, APKINDEX and apk verification parsers; vmlinux extraction;
# void-kernel and alpine-kernel end to end (through make for Void); the
# rootfs-docker and register flows against a stub banger; and, as root,
# rootfs-void and rootfs-alpine end to end, their chroot package step (fake
# package managers inside the fixture rootfs) and that failures, checksum
# mismatches and interrupts leave no output, no temporary directory and no
# mount behind.
#
# Usage: scripts/manual/test.sh    (exit status 1 when a check fails)
# Needs: bash, python3, curl, tar, gzip, xz, zstd, make, binutils (as,
# readelf), kmod (depmod), busybox-static, e2fsprogs (mkfs.ext4, debugfs);
# root for the rootfs checks (skipped otherwise); shellcheck (scripts/install-deps
# installs it; the lint check is skipped without it).
set -euo pipefail
shopt -s inherit_errexit

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
PATH=$PATH:/usr/sbin:/sbin

for t in python3 curl tar gzip xz zstd make as readelf depmod mkfs.ext4 debugfs; do
	command -v "$t" >/dev/null 2>&1 || {
		echo "test.sh: $t is required (Debian packages: python3 curl tar gzip xz-utils zstd make binutils kmod busybox-static e2fsprogs)" >&2
		exit 2
	}
done

T=$(mktemp -d "${TMPDIR:-/tmp}/banger-manual-test.XXXXXX")
T=$(cd "$T" && pwd -P)
server_pid=
cleanup() {
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	awk -v d="$T/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
		umount -l "$m" 2>/dev/null || true
	done
	rm -rf --one-file-system "$T"
}
trap cleanup EXIT

passes=0 failures=0 skips=0
mkdir -p "$T/logs"

ok() {
	passes=$((passes + 1))
	echo "ok    $*"
}

fail() {
	failures=$((failures + 1))
	echo "FAIL  $*"
}

skip() {
	skips=$((skips + 1))
	echo "skip  $*"
}

# show LOG: the end of a failed check's output.
show() {
	sed 's/^/      | /' "$1" | tail -n 15
}

# log_of NAME: where a check's output goes.
log_of() {
	printf '%s/logs/%s.log' "$T" "$(printf '%s' "$1" | tr -c 'A-Za-z0-9._-' _)"
}

# expect_ok NAME CMD...: CMD must succeed.
expect_ok() {
	local name=$1 log
	shift
	log=$(log_of "$name")
	if "$@" >"$log" 2>&1; then
		ok "$name"
	else
		fail "$name (exit status $?)"
		show "$log"
	fi
}

# expect_fail NAME REGEX CMD...: CMD must fail, printing something that
# matches REGEX.
expect_fail() {
	local name=$1 re=$2 log rc=0
	shift 2
	log=$(log_of "$name")
	"$@" >"$log" 2>&1 || rc=$?
	if [ "$rc" = 0 ]; then
		fail "$name (succeeded, should have failed)"
		show "$log"
	elif ! grep -Eq -- "$re" "$log"; then
		fail "$name (failed without saying /$re/)"
		show "$log"
	else
		ok "$name"
	fi
}

# check NAME CMD...: CMD is a silent condition.
check() {
	local name=$1
	shift
	if "$@" >/dev/null 2>&1; then ok "$name"; else fail "$name"; fi
}

# nothing_left DIR: DIR holds no output and no temporary directory.
nothing_left() {
	[ -z "$(ls -A "$1" 2>/dev/null)" ]
}

no_mounts_under() {
	! awk -v d="$1/" 'index($5, d) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo
}

# in_lib CMD...: runs CMD (a lib.sh function) in a subshell that sourced
# lib.sh, with WORK set to a fresh directory.
in_lib() {
	(
		prog=manual-test
		# shellcheck source=lib.sh
		. "$here/lib.sh"
		WORK=$(mktemp -d "$T/work.XXXXXX")
		"$@"
	)
}

echo "== syntax"
for f in "$here"/*.sh; do
	expect_ok "bash -n $(basename "$f")" bash -n "$f"
done
if command -v shellcheck >/dev/null 2>&1; then
	expect_ok "shellcheck scripts/manual/*.sh" shellcheck -x -P SCRIPTDIR "$here"/*.sh
else
	skip "shellcheck (not installed: apt-get install shellcheck)"
fi

echo "== fixtures"
www="$T/www"
mkdir -p "$www"
cat >"$T/server.py" <<'PY'
import functools, http.server, sys, time

class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/slow/"):  # a download that never ends
            self.send_response(200)
            self.send_header("Content-Length", "100000000")
            self.end_headers()
            self.wfile.write(b"x" * 4096)
            self.wfile.flush()
            time.sleep(120)
            return
        super().do_GET()

    def log_message(self, *args):
        pass

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=sys.argv[1]))
srv.daemon_threads = True
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
srv.serve_forever()
PY
python3 "$T/server.py" "$www" "$T/port" &
server_pid=$!
for _ in $(seq 100); do
	[ -s "$T/port" ] && break
	sleep 0.05
done
[ -s "$T/port" ] || {
	echo "test.sh: the fixture server did not start" >&2
	exit 1
}
base="http://127.0.0.1:$(cat "$T/port")"
# The fixture server is on loopback; a proxy the environment names (users
# behind a corporate proxy have one) cannot reach it, and curl would ask it.
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}" NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"

# make_module DIR/NAME.ko EXPORT REF: a minimal module object depmod reads:
# a .modinfo, an exported symbol EXPORT (or -) and a reference to REF (or -).
make_module() {
	local out=$1 export=$2 ref=$3 name
	name=$(basename "$out" .ko)
	mkdir -p "$(dirname "$out")"
	{
		printf '\t.section .modinfo,"a"\n\t.asciz "license=GPL"\n\t.asciz "name=%s"\n' "$name"
		if [ "$export" != - ]; then
			printf '\t.section __ksymtab_strings,"a"\n\t.asciz "%s"\n' "$export"
			printf '\t.text\n\t.globl %s\n%s:\n\tret\n' "$export" "$export"
		fi
		[ "$ref" = - ] || printf '\t.data\n\t.quad %s\n' "$ref"
	} >"$out.s"
	as -o "$out" "$out.s"
	rm -f "$out.s"
}

# make_kernel_tree ROOT MODDIR COMPRESS VMLINUZ PAYLOAD: a fake kernel
# package: a bzImage-like VMLINUZ whose PAYLOAD-compressed (zstd or gzip)
# content is an ELF header, and modules compressed with COMPRESS.
make_kernel_tree() {
	local root=$1 mods=$2 comp=$3 vmlinuz=$4 payload=$5 k
	mkdir -p "$root/boot" "$mods"
	k="$mods/kernel"
	make_module "$k/drivers/virtio/virtio_ring.ko" vring_new -
	make_module "$k/drivers/virtio/virtio_mmio.ko" - vring_new
	make_module "$k/drivers/block/virtio_blk.ko" - vring_new
	make_module "$k/drivers/net/virtio_net.ko" - vring_new
	make_module "$k/net/vmw_vsock/vsock.ko" vsock_core_register -
	make_module "$k/net/vmw_vsock/vmw_vsock_virtio_transport.ko" - vsock_core_register
	make_module "$k/fs/jbd2/jbd2.ko" jbd2_journal_start -
	make_module "$k/fs/ext4/ext4.ko" - jbd2_journal_start
	make_module "$k/drivers/misc/unrelated.ko" - -
	find "$k" -name '*.ko' | sed "s|^$mods/||" | sort >"$mods/modules.order"
	: >"$mods/modules.builtin"
	if [ "$comp" = zstd ]; then
		# virtio_mmio is built into this kernel.
		rm "$k/drivers/virtio/virtio_mmio.ko"
		echo kernel/drivers/virtio/virtio_mmio.ko >"$mods/modules.builtin"
		find "$k" -name '*.ko' -exec zstd -q --rm {} +
	else
		find "$k" -name '*.ko' -exec gzip -n {} +
	fi
	ln -s /usr/src/kernel-headers "$mods/build"
	printf '\177ELF\002\001\001' >"$T/elf"
	head -c 4096 /dev/zero >>"$T/elf"
	{
		printf 'MZ'
		head -c 600 /dev/urandom | tr -d '\037\050\375\135\002'
		printf '\037\213\010not-a-gzip-stream'
		if [ "$payload" = zstd ]; then zstd -q -c "$T/elf"; else gzip -n -c "$T/elf"; fi
		printf 'trailing bytes'
	} >"$vmlinuz"
	echo "CONFIG_VIRTIO_BLK=m" >"$root/boot/config-fake"
}

# Void: the kernel package and a repository index for it.
vpkg="$T/fx/void-pkg"
make_kernel_tree "$vpkg" "$vpkg/usr/lib/modules/6.12.99_1" zstd "$vpkg/boot/vmlinuz-6.12.99_1" zstd
echo '<plist/>' >"$vpkg/props.plist"
mkdir -p "$www/void/current" "$www/void-bad/current"
(cd "$vpkg" && tar --owner=0 --group=0 -cf - .) | zstd -q -c >"$www/void/current/linux6.12-6.12.99_1.x86_64.xbps"
cp "$www/void/current/linux6.12-6.12.99_1.x86_64.xbps" "$www/void-bad/current/"

# Alpine: the linux-virt apk (apk v2: signature, control and data gzip
# streams) and APKINDEX.tar.gz, plus broken variants.
apkg="$T/fx/alpine-pkg"
make_kernel_tree "$apkg" "$apkg/lib/modules/6.6.99-0-virt" gzip "$apkg/boot/vmlinuz-virt" gzip

# Root filesystem trees, with owners set in the tarballs (no root needed
# to make them). The fake package managers let the chroot step run.
cp "$(command -v busybox 2>/dev/null || echo /bin/busybox)" "$T/fx/busybox" 2>/dev/null || true

cat >"$T/fixtures.py" <<'PY'
import base64, gzip, hashlib, io, json, lzma, os, plistlib, subprocess, sys, tarfile, time

T, www, base = sys.argv[1], sys.argv[2], sys.argv[3]

def sha256(b): return hashlib.sha256(b).hexdigest()

def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)

def tar_bytes(entries, eof=True):
    """entries: (name, kind, data_or_target, mode, uid, gid)"""
    buf = io.BytesIO()
    tf = tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT)
    for name, kind, data, mode, uid, gid in entries:
        ti = tarfile.TarInfo(name)
        ti.mode, ti.uid, ti.gid, ti.mtime = mode, uid, gid, 1700000000
        if kind == "dir":
            ti.type = tarfile.DIRTYPE
            tf.addfile(ti)
        elif kind == "link":
            ti.type, ti.linkname = tarfile.SYMTYPE, data
            tf.addfile(ti)
        else:
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    if not eof:
        return buf.getvalue()  # a tar segment: no end-of-archive blocks
    tf.close()
    return buf.getvalue()

def tree_entries(root):
    out = []
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for n in sorted(dirs + files):
            p = os.path.join(d, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if os.path.islink(p):
                out.append((rel, "link", os.readlink(p), 0o777, 0, 0))
            elif os.path.isdir(p):
                out.append((rel, "dir", None, 0o755, 0, 0))
            else:
                out.append((rel, "file", open(p, "rb").read(), st.st_mode & 0o7777, 0, 0))
    return out

def zstd(b):
    return subprocess.run(["zstd", "-q", "-c"], input=b, stdout=subprocess.PIPE, check=True).stdout

# --- Void repository index
xbps = open(os.path.join(www, "void/current/linux6.12-6.12.99_1.x86_64.xbps"), "rb").read()
def repodata(sha):
    index = {
        "bash": {"pkgver": "bash-5.2.37_1", "architecture": "x86_64",
                 "filename-sha256": "0" * 64, "filename-size": 1, "run_depends": ["glibc>=2.39_1"]},
        "linux6.12": {"pkgver": "linux6.12-6.12.99_1", "architecture": "x86_64",
                      "filename-sha256": sha, "filename-size": len(xbps),
                      "short_desc": "Linux kernel and modules (6.12 series)"},
    }
    # xbps (proplib) writes unsigned integers in hex.
    plist = plistlib.dumps(index).replace(b"<integer>%d</integer>" % len(xbps), b"<integer>0x%x</integer>" % len(xbps))
    t = tar_bytes([("index.plist", "file", plist, 0o644, 0, 0),
                   ("index-meta.plist", "file", plistlib.dumps({}), 0o644, 0, 0)])
    return zstd(t)
write(os.path.join(www, "void/current/x86_64-repodata"), repodata(sha256(xbps)))
write(os.path.join(www, "void-bad/current/x86_64-repodata"), repodata(sha256(b"something else")))

# --- Alpine apk and index
def gz(b): return gzip.compress(b, mtime=0)
data = gz(tar_bytes(tree_entries(os.path.join(T, "fx/alpine-pkg"))))
def apk(datahash):
    pkginfo = ("pkgname = linux-virt\npkgver = 6.6.99-r0\ndatahash = %s\n" % datahash).encode()
    control = gz(tar_bytes([(".PKGINFO", "file", pkginfo, 0o644, 0, 0)], eof=False))
    sig = gz(tar_bytes([(".SIGN.RSA.alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub", "file", b"sig", 0o644, 0, 0)], eof=False))
    blob = sig + control + data
    return blob, "Q1" + base64.b64encode(hashlib.sha1(control).digest()).decode()
def apkindex(records):
    text = "\n".join("C:%s\nP:%s\nV:%s\nA:x86_64\nS:%d\nI:1\nT:x\n" % r for r in records) + "\n"
    sig = gz(tar_bytes([(".SIGN.RSA.alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub", "file", b"sig", 0o644, 0, 0)], eof=False))
    idx = gz(tar_bytes([("DESCRIPTION", "file", b"v3.20", 0o644, 0, 0), ("APKINDEX", "file", text.encode(), 0o644, 0, 0)]))
    return sig + idx
good, goodsum = apk(sha256(data))
lying, lyingsum = apk("f" * 64)  # .PKGINFO's datahash does not match
for mirror, blob, csum in [("alpine", good, goodsum), ("alpine-badsum", good, "Q1" + base64.b64encode(b"\0" * 20).decode()),
                           ("alpine-baddata", lying, lyingsum)]:
    d = os.path.join(www, mirror, "v3.20/main/x86_64")
    write(os.path.join(d, "linux-virt-6.6.99-r0.apk"), blob)
    write(os.path.join(d, "APKINDEX.tar.gz"), apkindex([
        ("Q1" + base64.b64encode(b"1" * 20).decode(), "linux-lts", "6.6.99-r0", 1),
        (csum, "linux-virt", "6.6.99-r0", len(blob)),
        ("Q1" + base64.b64encode(b"2" * 20).decode(), "musl", "1.2.5-r0", 1)]))

# --- npm package for opencode
pkg = tar_bytes([("package/package.json", "file", b'{"name":"opencode-linux-x64-musl"}', 0o644, 0, 0),
                 ("package/bin/opencode", "file", b"#!/bin/sh\necho fake opencode\n", 0o755, 0, 0)])
tgz = gz(pkg)
write(os.path.join(www, "npm/opencode-linux-x64-musl/-/opencode-linux-x64-musl-1.0.0.tgz"), tgz)
integrity = "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode()
write(os.path.join(www, "npm/opencode-linux-x64-musl/latest"), json.dumps({
    "name": "opencode-linux-x64-musl", "version": "1.0.0",
    "dist": {"tarball": base + "/npm/opencode-linux-x64-musl/-/opencode-linux-x64-musl-1.0.0.tgz", "integrity": integrity}}).encode())
write(os.path.join(www, "npm-bad/opencode-linux-x64-musl/latest"), json.dumps({
    "dist": {"tarball": base + "/npm/opencode-linux-x64-musl/-/opencode-linux-x64-musl-1.0.0.tgz",
             "integrity": "sha512-" + base64.b64encode(b"\0" * 64).decode()}}).encode())

# --- root filesystems
bb = open(os.path.join(T, "fx/busybox"), "rb").read() if os.path.exists(os.path.join(T, "fx/busybox")) else b""
def D(n, mode=0o755, uid=0, gid=0): return (n, "dir", None, mode, uid, gid)
def F(n, data, mode=0o644, uid=0, gid=0): return (n, "file", data.encode() if isinstance(data, str) else data, mode, uid, gid)
def L(n, target): return (n, "link", target, 0o777, 0, 0)
def fake_pm(name, fail):
    return ("#!/bin/sh\necho \"%s $*\" >>/var/log/fake-pm.log\n"
            "[ -c /dev/null ] && [ -r /proc/self/status ] || { echo 'no /dev/null or /proc in the chroot' >&2; exit 1; }\n"
            "%s" % (name, "exit 1\n" if fail else ""))
common = [D("etc"), D("etc/ssh"), D("usr"), D("usr/bin"), D("var"), D("var/log"), D("root", 0o700), D("home"),
          D("bin"), F("bin/busybox", bb, 0o755), L("bin/sh", "busybox"),
          F("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n"),
          F("root/.profile", "# root profile\n"), D("home/user", 0o750, 1000, 1000),
          F("home/user/notes", "mine\n", 0o640, 1000, 1000), F("usr/bin/su", "su\n", 0o4755)]
def void_rootfs(fail=False):
    xi = fake_pm("xbps-install", fail) + "case \"$*\" in *'-u xbps'*|'-y -u') exit 17 ;; esac\n"
    xq = "#!/bin/sh\ncase \"$1\" in openssh|bash) exit 0 ;; esac\nexit 2\n"
    return common + [
        F("etc/shadow", "root:$6$voidlinux$hash:19000:0:99999:7:::\n", 0o600),
        F("etc/ssh/sshd_config", "#PermitRootLogin prohibit-password\nSubsystem sftp /usr/libexec/sftp-server\n"),
        D("etc/sv"), D("etc/sv/sshd"), F("etc/sv/sshd/run", "#!/bin/sh\nexec sshd -D\n", 0o755),
        D("etc/runit"), D("etc/runit/runsvdir"), D("etc/runit/runsvdir/default"),
        F("usr/bin/sshd", "sshd\n", 0o755), F("usr/bin/xbps-install", xi, 0o755),
        F("usr/bin/xbps-query", xq, 0o755), F("usr/bin/xbps-remove", fake_pm("xbps-remove", False), 0o755),
        D("var/cache"), D("var/cache/xbps"), F("var/cache/xbps/old.xbps", "cached\n")]
def alpine_rootfs(fail=False):
    return common + [
        F("etc/alpine-release", "3.20.3\n"), F("etc/shadow", "root::19000:0:::::\n", 0o640),
        F("etc/ssh/sshd_config", "Include /etc/ssh/sshd_config.d/*.conf\n#PermitRootLogin prohibit-password\n"),
        D("etc/apk"), F("etc/apk/repositories", "https://example.invalid/alpine/v3.20/main\n"),
        D("etc/init.d"), F("etc/init.d/sshd", "#!/sbin/openrc-run\n", 0o755), F("etc/init.d/devfs", "#!/sbin/openrc-run\n", 0o755),
        F("etc/init.d/hostname", "#!/sbin/openrc-run\n", 0o755), F("etc/init.d/killprocs", "#!/sbin/openrc-run\n", 0o755),
        D("etc/runlevels"), D("sbin"), D("usr/sbin"), F("usr/sbin/sshd", "sshd\n", 0o755),
        F("sbin/apk", fake_pm("apk", fail), 0o755)]

def xz(b): return lzma.compress(b, format=lzma.FORMAT_XZ)
for mirror, fail in [("void", False), ("void-pmfail", True), ("void-badsum", False)]:
    d = os.path.join(www, mirror, "live/current")
    blob = xz(tar_bytes(void_rootfs(fail)))
    write(os.path.join(d, "void-x86_64-ROOTFS-20240101.tar.xz"), blob)
    s = sha256(blob) if mirror != "void-badsum" else "e" * 64
    write(os.path.join(d, "sha256sum.txt"), (
        "SHA256 (void-live-x86_64-20240101-base.iso) = %s\n"
        "SHA256 (void-x86_64-ROOTFS-20230101.tar.xz) = %s\n"
        "SHA256 (void-x86_64-ROOTFS-20240101.tar.xz) = %s\n"
        "SHA256 (void-x86_64-musl-ROOTFS-20250101.tar.xz) = %s\n" % ("1" * 64, "2" * 64, s, "3" * 64)).encode())
for mirror, fail in [("alpine", False), ("alpine-pmfail", True)]:
    d = os.path.join(www, mirror, "v3.20/releases/x86_64")
    blob = gz(tar_bytes(alpine_rootfs(fail)))
    name = "alpine-minirootfs-3.20.3-x86_64.tar.gz"
    write(os.path.join(d, name), blob)
    write(os.path.join(d, name + ".sha256"), ("%s  %s\n" % (sha256(blob), name)).encode())
PY
expect_ok "generate fixtures" python3 "$T/fixtures.py" "$T" "$www" "$base"

echo "== download and verify"
mkdir -p "$T/dl"
printf 'hello\n' >"$www/hello.txt"
hello_sha=$(sha256sum "$www/hello.txt" | cut -d' ' -f1)
expect_ok "fetch_verified: good file over http" in_lib fetch_verified "$base/hello.txt" "$T/dl/hello" sha256 "$hello_sha" 6
check "fetch_verified: the file is in place, no .part" test -f "$T/dl/hello" -a ! -e "$T/dl/hello.part"
expect_ok "fetch_verified: file:// URL" in_lib fetch_verified "file://$www/hello.txt" "$T/dl/hello2" sha256 "$hello_sha"
expect_fail "fetch_verified: sha256 mismatch fails" "sha256 mismatch.*nothing was kept|nothing was kept" \
	in_lib fetch_verified "$base/hello.txt" "$T/dl/bad" sha256 "$(printf '%064d' 0)"
check "fetch_verified: a mismatch leaves nothing" test ! -e "$T/dl/bad" -a ! -e "$T/dl/bad.part"
expect_fail "fetch_verified: size mismatch fails" "size mismatch" \
	in_lib fetch_verified "$base/hello.txt" "$T/dl/bad" sha256 "$hello_sha" 7
check "fetch_verified: a size mismatch leaves nothing" test ! -e "$T/dl/bad" -a ! -e "$T/dl/bad.part"
expect_fail "fetch_verified: 404 fails" "downloading .*failed" \
	in_lib fetch_verified "$base/missing" "$T/dl/bad" sha256 "$hello_sha"
check "fetch_verified: a failed download leaves nothing" test ! -e "$T/dl/bad" -a ! -e "$T/dl/bad.part"
expect_fail "fetch_verified: malformed expected digest" "is not 64 hex digits" \
	in_lib fetch_verified "$base/hello.txt" "$T/dl/bad" sha256 "abc"
printf 'SHA256 (a.tar.xz) = %s\n%s  b.tar.gz\n%s *c.iso\n' "$(printf 'a%.0s' {1..64})" "$(printf 'b%.0s' {1..64})" "$(printf 'c%.0s' {1..64})" >"$T/sums"
check "sum_for: BSD format" test "$(in_lib sum_for "$T/sums" a.tar.xz)" = "$(printf 'a%.0s' {1..64})"
check "sum_for: GNU format" test "$(in_lib sum_for "$T/sums" b.tar.gz)" = "$(printf 'b%.0s' {1..64})"
check "sum_for: GNU binary-mode format" test "$(in_lib sum_for "$T/sums" c.iso)" = "$(printf 'c%.0s' {1..64})"
check "sum_for: unknown name prints nothing" test -z "$(in_lib sum_for "$T/sums" d)"

echo "== repository indexes"
xbps_file="$www/void/current/linux6.12-6.12.99_1.x86_64.xbps"
want="linux6.12-6.12.99_1 $(sha256sum "$xbps_file" | cut -d' ' -f1) $(stat -c %s "$xbps_file")"
check "void_repodata_lookup: linux6.12" test "$(in_lib void_repodata_lookup "$www/void/current/x86_64-repodata" linux6.12)" = "$want"
expect_fail "void_repodata_lookup: unknown package" "not in the repository index" \
	in_lib void_repodata_lookup "$www/void/current/x86_64-repodata" linux9.99
expect_fail "void_repodata_lookup: not a repodata file" "cannot parse" \
	in_lib void_repodata_lookup "$www/hello.txt" linux6.12
check "void_pick_rootfs: newest glibc ROOTFS" \
	test "$(in_lib void_pick_rootfs "$www/void/live/current/sha256sum.txt" x86_64)" = void-x86_64-ROOTFS-20240101.tar.xz
apk_file="$www/alpine/v3.20/main/x86_64/linux-virt-6.6.99-r0.apk"
read -r v c s < <(in_lib apkindex_lookup "$www/alpine/v3.20/main/x86_64/APKINDEX.tar.gz" linux-virt)
check "apkindex_lookup: version" test "$v" = 6.6.99-r0
check "apkindex_lookup: size" test "$s" = "$(stat -c %s "$apk_file")"
check "apkindex_lookup: checksum is Q1 + base64" test "${c:0:2}" = Q1 -a ${#c} = 30
expect_fail "apkindex_lookup: unknown package" "not in the repository index" \
	in_lib apkindex_lookup "$www/alpine/v3.20/main/x86_64/APKINDEX.tar.gz" linux-nope
expect_ok "apk_verify_data: good apk" in_lib apk_verify_data "$apk_file" "$c" "$T/dl/data.tar.gz"
check "apk_verify_data: data stream holds the kernel" bash -c "tar -tzf '$T/dl/data.tar.gz' | grep -qx 'boot/vmlinuz-virt'"
expect_fail "apk_verify_data: control checksum mismatch" "control checksum mismatch" \
	in_lib apk_verify_data "$apk_file" "Q1$(printf 'A%.0s' {1..27})=" "$T/dl/x.tar.gz"
expect_fail "apk_verify_data: data hash mismatch" "data sha256 mismatch" \
	in_lib apk_verify_data "$www/alpine-baddata/v3.20/main/x86_64/linux-virt-6.6.99-r0.apk" \
	"$(in_lib apkindex_lookup "$www/alpine-baddata/v3.20/main/x86_64/APKINDEX.tar.gz" linux-virt | cut -d' ' -f2)" "$T/dl/x.tar.gz"
check "apk_verify_data: failures write no data" test ! -e "$T/dl/x.tar.gz"
check "alpine_branch: 3.20.3 -> v3.20" test "$(in_lib alpine_branch 3.20.3)" = v3.20
expect_fail "alpine_branch: bad release" "not a release number" in_lib alpine_branch 3.20

echo "== vmlinux"
expect_ok "extract_vmlinux: zstd payload after a false gzip magic" in_lib extract_vmlinux "$vpkg/boot/vmlinuz-6.12.99_1" "$T/dl/vmlinux"
check "extract_vmlinux: output is the ELF" cmp "$T/dl/vmlinux" "$T/elf"
check "extract_vmlinux: not a kernel" bash -c "! (prog=t; . '$here/lib.sh'; extract_vmlinux '$www/hello.txt' '$T/dl/nope')"
check "extract_vmlinux: leaves nothing on failure" test ! -e "$T/dl/nope" -a ! -e "$T/dl/nope.try"

echo "== void-kernel"
out="$T/out"
mkdir -p "$out"
expect_ok "make void-kernel (fixture mirror)" make -s -C "$repo" void-kernel MANUAL_DIR="$out" VOID_MIRROR="$base/void"
kd="$out/void-kernel"
check "void-kernel: vmlinux is the ELF" cmp "$kd/vmlinux" "$T/elf"
check "void-kernel: vmlinuz, initramfs.img, config, info.txt" test -f "$kd/vmlinuz" -a -s "$kd/initramfs.img" -a -f "$kd/config" -a -f "$kd/info.txt"
check "void-kernel: modules are uncompressed" test -f "$kd/modules/6.12.99_1/kernel/drivers/block/virtio_blk.ko" -a -z "$(find "$kd/modules" -name '*.zst')"
check "void-kernel: modules.dep by depmod" grep -qx 'kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko' "$kd/modules/6.12.99_1/modules.dep"
check "void-kernel: warns about kernel options a VM needs" grep -q "CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES is not set" "$(log_of "make void-kernel (fixture mirror)")"
check "void-kernel: absolute build symlink dropped" test ! -L "$kd/modules/6.12.99_1/build"
busybox=$(command -v busybox || echo /bin/busybox)
# unpack_initramfs IMG DIR
unpack_initramfs() {
	rm -rf "$2" && mkdir -p "$2"
	(cd "$2" && gzip -dc "$1" | "$busybox" cpio -id >/dev/null 2>&1) || true
}
unpack_initramfs "$kd/initramfs.img" "$T/ird"
check "void-kernel: initramfs has init and busybox" test -x "$T/ird/init" -a -x "$T/ird/bin/busybox"
check "void-kernel: initramfs loads dependencies first" bash -c "grep -n . '$T/ird/etc/modules.load' | tr '\n' ' ' | grep -q '1:kernel/drivers/virtio/virtio_ring.ko 2:kernel/drivers/block/virtio_blk.ko'"
check "void-kernel: initramfs loads ext4 after jbd2" bash -c "grep -A1 jbd2 '$T/ird/etc/modules.load' | grep -q ext4"
check "void-kernel: built-in virtio_mmio is not loaded" bash -c "! grep -q virtio_mmio '$T/ird/etc/modules.load'"
check "void-kernel: unrelated modules stay out of the initramfs" test ! -e "$T/ird/lib/modules/kernel/drivers/misc/unrelated.ko"
check "void-kernel: no temporary directory left" bash -c "! ls -A '$out' | grep -q '^\.tmp'"
touch "$kd/marker" || true
expect_fail "void-kernel: repodata sha256 mismatch fails" "sha256 mismatch|nothing was kept" \
	env MANUAL_DIR="$out" VOID_MIRROR="$base/void-bad" "$here/void-kernel.sh"
check "void-kernel: the failed run kept the previous output" test -f "$kd/marker"
check "void-kernel: the failed run left no temporary directory" bash -c "! ls -A '$out' | grep -q '^\.tmp'"
expect_fail "void-kernel: unreachable mirror fails" "downloading .*failed" \
	env MANUAL_DIR="$T/out-none" VOID_MIRROR="$base/nowhere" "$here/void-kernel.sh"
check "void-kernel: unreachable mirror leaves nothing" nothing_left "$T/out-none"
expect_fail "void-kernel: usage error" "usage:" "$here/void-kernel.sh" --bogus

# An interrupted run (the whole process group, as Ctrl-C does) removes its
# temporary directory.
mkdir -p "$T/out-int"
setsid env MANUAL_DIR="$T/out-int" VOID_MIRROR="$base/slow" "$here/void-kernel.sh" >"$T/logs/interrupt.log" 2>&1 &
int_pid=$!
for _ in $(seq 100); do
	[ -n "$(ls -A "$T/out-int")" ] && break
	sleep 0.05
done
check "void-kernel: interrupted run had started" test -n "$(ls -A "$T/out-int")"
sleep 0.3
kill -TERM -- "-$int_pid" 2>/dev/null || true
wait "$int_pid" 2>/dev/null || true
check "void-kernel: interrupted run leaves nothing" nothing_left "$T/out-int"

echo "== alpine-kernel"
expect_ok "alpine-kernel (fixture mirror)" env MANUAL_DIR="$out" ALPINE_MIRROR="$base/alpine" ALPINE_RELEASE=3.20.3 "$here/alpine-kernel.sh"
ak="$out/alpine-kernel"
check "alpine-kernel: vmlinux is the ELF" cmp "$ak/vmlinux" "$T/elf"
check "alpine-kernel: modules.dep" grep -q 'kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko' "$ak/modules/6.6.99-0-virt/modules.dep"
check "alpine-kernel: modules are uncompressed" test -z "$(find "$ak/modules" -name '*.gz')"
unpack_initramfs "$ak/initramfs.img" "$T/ird"
check "alpine-kernel: virtio_mmio (a module here) is loaded" grep -q virtio_mmio.ko "$T/ird/etc/modules.load"
check "alpine-kernel: info.txt names the package" grep -qx 'package=linux-virt-6.6.99-r0' "$ak/info.txt"
for m in alpine-badsum alpine-baddata; do
	expect_fail "alpine-kernel: $m fails" "mismatch" env MANUAL_DIR="$T/out-$m" ALPINE_MIRROR="$base/$m" "$here/alpine-kernel.sh"
	check "alpine-kernel: $m leaves nothing" nothing_left "$T/out-$m"
done
expect_fail "alpine-kernel: bad ALPINE_RELEASE" "not a release number" env MANUAL_DIR="$T/out-x" ALPINE_RELEASE=edge "$here/alpine-kernel.sh"

echo "== rootfs (image build) and register, with a stub banger"
mkdir -p "$T/stub/images"
cat >"$T/stub/banger" <<'STUB'
#!/usr/bin/env bash
# A stand-in for banger's image commands; state in $STUB_DIR/images/NAME.
set -euo pipefail
echo "banger $*" >>"$STUB_DIR/calls"
flag() { local want=$1; shift; while [ $# -gt 0 ]; do [ "$1" = "$want" ] && { echo "$2"; return; }; shift; done; }
case "$1 $2" in
"image register")
	n=$(flag --name "$@")
	[ ! -e "$STUB_DIR/images/$n" ] || { echo "image $n exists" >&2; exit 1; }
	mkdir "$STUB_DIR/images/$n" ;;
"image build")
	n=$(flag --name "$@")
	[ -z "${STUB_FAIL_BUILD:-}" ] || { echo "build failed in the builder VM" >&2; exit 1; }
	mkdir "$STUB_DIR/images/$n"
	truncate -s 64M "$STUB_DIR/images/$n/rootfs.ext4" "$STUB_DIR/images/$n/work-seed.ext4"
	echo rootfs | dd of="$STUB_DIR/images/$n/rootfs.ext4" conv=notrunc 2>/dev/null
	echo seed | dd of="$STUB_DIR/images/$n/work-seed.ext4" conv=notrunc 2>/dev/null ;;
"image show")
	[ -d "$STUB_DIR/images/$3" ] || { echo "no image $3" >&2; exit 1; }
	printf '{"name":"%s","rootfs":"%s","work_seed":"%s"}\n' "$3" "$STUB_DIR/images/$3/rootfs.ext4" "$STUB_DIR/images/$3/work-seed.ext4" ;;
"image delete")
	rm -rf "$STUB_DIR/images/$3" ;;
*) echo "stub: unexpected $*" >&2; exit 1 ;;
esac
STUB
chmod +x "$T/stub/banger"
export STUB_DIR="$T/stub"
truncate -s 16M "$T/base.ext4"
cp "$T/elf" "$T/vmlinux"
printf 'echo hi\n' >"$T/extra.sh"
expect_ok "make rootfs ARGS=... (stub banger)" make -s -C "$repo" rootfs BANGER="$T/stub/banger" MANUAL_DIR="$T/out-docker" \
	ARGS="--base-rootfs $T/base.ext4 --kernel $T/vmlinux --initrd $T/elf --script $T/extra.sh"
check "rootfs: rootfs-docker.ext4 is the built rootfs" bash -c "head -c 6 '$T/out-docker/rootfs-docker.ext4' | grep -q rootfs"
check "rootfs: rootfs-docker.work-seed.ext4 is the built seed" bash -c "head -c 4 '$T/out-docker/rootfs-docker.work-seed.ext4' | grep -q seed"
check "rootfs: copies are sparse" test "$(du -k "$T/out-docker/rootfs-docker.ext4" | cut -f1)" -lt 1024
check "rootfs: register got the files" grep -Eq "image register --name manual-base-[0-9a-f]{8} --rootfs $T/base.ext4 --kernel $T/vmlinux --initrd $T/elf" "$STUB_DIR/calls"
check "rootfs: build got --docker and --script" grep -Eq "image build --name manual-docker-[0-9a-f]{8} --from-image manual-base-[0-9a-f]{8} --docker --script $T/extra.sh" "$STUB_DIR/calls"
check "rootfs: temporary images deleted" nothing_left "$STUB_DIR/images"
check "rootfs: no temporary directory left" bash -c "! ls -A '$T/out-docker' | grep -q '^\.tmp'"
: >"$STUB_DIR/calls"
expect_fail "rootfs: a failed build fails" "image build failed" \
	env STUB_FAIL_BUILD=1 BANGER="$T/stub/banger" MANUAL_DIR="$T/out-docker-fail" "$here/rootfs-docker.sh" --base-rootfs "$T/base.ext4" --kernel "$T/vmlinux"
check "rootfs: a failed build deletes the temporary image" nothing_left "$STUB_DIR/images"
check "rootfs: ... with banger image delete" grep -Eq "image delete manual-base-" "$STUB_DIR/calls"
check "rootfs: a failed build writes nothing" nothing_left "$T/out-docker-fail"
expect_fail "rootfs: --kernel is required" "--kernel is required" "$here/rootfs-docker.sh" --base-rootfs "$T/base.ext4"
expect_fail "rootfs: missing base rootfs is named" "no such file" "$here/rootfs-docker.sh" --base-rootfs "$T/nope.ext4" --kernel "$T/vmlinux"

# register: fake rootfs files next to the staged kernels.
touch "$out/rootfs-void.ext4" "$out/rootfs-void.work-seed.ext4"
: >"$STUB_DIR/calls"
expect_ok "make void-register (stub banger)" make -s -C "$repo" void-register BANGER="$T/stub/banger" MANUAL_DIR="$out"
check "void-register: registers every file" grep -qx "banger image register --name void --rootfs $out/rootfs-void.ext4 --work-seed $out/rootfs-void.work-seed.ext4 --kernel $out/void-kernel/vmlinux --initrd $out/void-kernel/initramfs.img --modules $out/void-kernel/modules" "$STUB_DIR/calls"
expect_fail "void-register: an existing image is refused" "already exists" env BANGER="$T/stub/banger" MANUAL_DIR="$out" "$here/register.sh" void
expect_fail "alpine-register: missing rootfs names the make target" "sudo make rootfs-alpine" env BANGER="$T/stub/banger" MANUAL_DIR="$out" "$here/register.sh" alpine
expect_fail "register: missing kernel names the make target" "make void-kernel" env BANGER="$T/stub/banger" MANUAL_DIR="$T/empty" "$here/register.sh" void
rm -f "$out/rootfs-void.ext4" "$out/rootfs-void.work-seed.ext4"

echo "== make"
check "make help lists the manual targets" bash -c "make -s -C '$repo' help | grep -q rootfs-alpine"
check "make passes ALPINE_RELEASE" bash -c "make -s -n -C '$repo' alpine-kernel ALPINE_RELEASE=3.19.4 | grep -q \"ALPINE_RELEASE='3.19.4'\""
check "make passes ARGS" bash -c "make -s -n -C '$repo' rootfs-void ARGS='--size 3G' | grep -q 'rootfs-void.sh --size 3G'"

echo "== rootfs-void and rootfs-alpine"
if [ "$(id -u)" != 0 ]; then
	skip "rootfs-void and rootfs-alpine (need root: sudo scripts/manual/test.sh)"
	expect_fail "rootfs-void: refuses to run without root" "must run as root" env MANUAL_DIR="$T/out-nr" "$here/rootfs-void.sh"
elif ! { mkdir -p "$T/probe" && mount -t tmpfs none "$T/probe" 2>/dev/null && umount "$T/probe"; }; then
	skip "rootfs-void and rootfs-alpine (root here cannot mount, which the chroot step needs)"
else

	expect_ok "rootfs-void (fixture ROOTFS, fake xbps in the chroot)" \
		env MANUAL_DIR="$T/out-void" VOID_MIRROR="$base/void" VOID_PACKAGES="openssh git curl" "$here/rootfs-void.sh" --size 256M
	img="$T/out-void/rootfs-void.ext4"
	seed="$T/out-void/rootfs-void.work-seed.ext4"
	check "rootfs-void: both images written" test -f "$img" -a -f "$seed"
	check "rootfs-void: rootfs size from --size" test "$(stat -c %s "$img")" = $((256 * 1024 * 1024))
	check "rootfs-void: owners kept (uid 1000)" bash -c "debugfs -R 'stat /home/user/notes' '$img' 2>/dev/null | grep -Eq 'User: +1000 +Group: +1000'"
	check "rootfs-void: setuid kept" bash -c "debugfs -R 'stat /usr/bin/su' '$img' 2>/dev/null | grep -q 'Mode:  04755'"
	check "rootfs-void: sshd key-only root login" bash -c "debugfs -R 'cat /etc/ssh/sshd_config.d/banger.conf' '$img' 2>/dev/null | grep -qx 'PermitRootLogin prohibit-password'"
	check "rootfs-void: sshd_config includes the drop-ins" bash -c "debugfs -R 'cat /etc/ssh/sshd_config' '$img' 2>/dev/null | head -n1 | grep -q '^Include /etc/ssh/sshd_config.d/'"
	check "rootfs-void: runit sshd service enabled" bash -c "debugfs -R 'stat /etc/runit/runsvdir/default/sshd' '$img' 2>/dev/null | grep -q '/etc/sv/sshd'"
	check "rootfs-void: root password locked" bash -c "debugfs -R 'cat /etc/shadow' '$img' 2>/dev/null | grep -q '^root:\*:'"
	check "rootfs-void: agent directory exists" bash -c "debugfs -R 'stat /usr/local/lib/banger' '$img' 2>/dev/null | grep -q 'Type: directory'"
	check "rootfs-void: xbps updated xbps, the system, then installed the missing packages" \
		bash -c "ext() { debugfs -R 'cat /var/log/fake-pm.log' '$img' 2>/dev/null; }; ext | grep -qx 'xbps-install -S -y -u xbps' && ext | grep -qx 'xbps-install -y -u' && ext | grep -qx 'xbps-install -y git curl'"
	check "rootfs-void: xbps cache emptied" bash -c "! debugfs -R 'ls /var/cache/xbps' '$img' 2>/dev/null | grep -q old.xbps"
	check "rootfs-void: the chroot's resolv.conf was removed" bash -c "debugfs -R 'stat /etc/resolv.conf' '$img' 2>&1 | grep -q 'File not found'"
	check "rootfs-void: work-seed holds /root" bash -c "debugfs -R 'cat /.profile' '$seed' 2>/dev/null | grep -q 'root profile'"
	check "rootfs-void: work-seed root is owned by root" bash -c "debugfs -R 'stat /' '$seed' 2>/dev/null | grep -Eq 'User: +0 +Group: +0'"
	check "rootfs-void: no temporary directory left" bash -c "! ls -A '$T/out-void' | grep -q '^\.tmp'"
	check "rootfs-void: no mount left" no_mounts_under "$T"

	expect_fail "rootfs-void: ROOTFS sha256 mismatch fails" "sha256 mismatch" \
		env MANUAL_DIR="$T/out-void-badsum" VOID_MIRROR="$base/void-badsum" VOID_PACKAGES= "$here/rootfs-void.sh"
	check "rootfs-void: the mismatch leaves nothing" nothing_left "$T/out-void-badsum"
	expect_fail "rootfs-void: a failing xbps-install fails" "failed in the Void chroot" \
		env MANUAL_DIR="$T/out-void-pm" VOID_MIRROR="$base/void-pmfail" "$here/rootfs-void.sh"
	check "rootfs-void: the failure leaves nothing" nothing_left "$T/out-void-pm"
	check "rootfs-void: the failure leaves no mount" no_mounts_under "$T"

	expect_ok "rootfs-alpine (fixture minirootfs, fake apk, fixture opencode)" \
		env MANUAL_DIR="$T/out-alpine" ALPINE_MIRROR="$base/alpine" NPM_REGISTRY="$base/npm" ALPINE_OPENCODE=1 "$here/rootfs-alpine.sh"
	img="$T/out-alpine/rootfs-alpine.ext4"
	check "rootfs-alpine: owners kept (uid 1000)" bash -c "debugfs -R 'stat /home/user/notes' '$img' 2>/dev/null | grep -Eq 'User: +1000'"
	check "rootfs-alpine: apk added the packages and opencode's libraries" bash -c "debugfs -R 'cat /var/log/fake-pm.log' '$img' 2>/dev/null | grep -qx 'apk add --no-cache openrc openssh git curl ca-certificates bash libstdc++ libgcc ripgrep'"
	check "rootfs-alpine: repositories point at the mirror" bash -c "debugfs -R 'cat /etc/apk/repositories' '$img' 2>/dev/null | grep -qx '$base/alpine/v3.20/main'"
	check "rootfs-alpine: opencode installed" bash -c "debugfs -R 'cat /usr/local/bin/opencode' '$img' 2>/dev/null | grep -q 'fake opencode'"
	check "rootfs-alpine: opencode openrc service on 0.0.0.0:4096" bash -c "debugfs -R 'cat /etc/init.d/opencode' '$img' 2>/dev/null | grep -q 'serve --hostname 0.0.0.0 --port 4096'"
	check "rootfs-alpine: sshd and opencode in the default runlevel" bash -c "debugfs -R 'ls /etc/runlevels/default' '$img' 2>/dev/null | grep -q sshd && debugfs -R 'ls /etc/runlevels/default' '$img' 2>/dev/null | grep -q opencode"
	check "rootfs-alpine: sshd_config keeps its single Include" bash -c "test \"\$(debugfs -R 'cat /etc/ssh/sshd_config' '$img' 2>/dev/null | grep -c '^Include')\" = 1"
	check "rootfs-alpine: root password locked" bash -c "debugfs -R 'cat /etc/shadow' '$img' 2>/dev/null | grep -q '^root:\*:'"
	check "rootfs-alpine: no mount left" no_mounts_under "$T"

	# Also as under sudo: outputs and the directories made for them go to
	# the invoking user.
	expect_ok "rootfs-alpine: opencode is best-effort by default" \
		env MANUAL_DIR="$T/out-alpine2/build/manual" SUDO_UID=65534 SUDO_GID=65534 ALPINE_MIRROR="$base/alpine" \
		NPM_REGISTRY="$base/npm-bad" ALPINE_PACKAGES= "$here/rootfs-alpine.sh"
	check "rootfs-alpine: ... and warns" grep -q "could not download opencode" "$(log_of "rootfs-alpine: opencode is best-effort by default")"
	check "rootfs-alpine: ... and the image has no opencode service" bash -c "debugfs -R 'stat /etc/init.d/opencode' '$T/out-alpine2/build/manual/rootfs-alpine.ext4' 2>&1 | grep -q 'File not found'"
	check "rootfs-alpine: under sudo, outputs belong to SUDO_UID" test "$(stat -c %u:%g "$T/out-alpine2/build/manual/rootfs-alpine.ext4" "$T/out-alpine2/build/manual/rootfs-alpine.work-seed.ext4" | sort -u)" = 65534:65534
	check "rootfs-alpine: under sudo, created directories belong to SUDO_UID" test "$(stat -c %u "$T/out-alpine2/build" "$T/out-alpine2/build/manual" | sort -u)" = 65534
	expect_fail "rootfs-alpine: ALPINE_OPENCODE=1 makes a bad opencode download fatal" "could not install opencode" \
		env MANUAL_DIR="$T/out-alpine3" ALPINE_MIRROR="$base/alpine" NPM_REGISTRY="$base/npm-bad" ALPINE_OPENCODE=1 "$here/rootfs-alpine.sh"
	check "rootfs-alpine: ... leaving nothing" nothing_left "$T/out-alpine3"
	expect_fail "rootfs-alpine: a failing apk fails" "apk add failed" \
		env MANUAL_DIR="$T/out-alpine4" ALPINE_MIRROR="$base/alpine-pmfail" ALPINE_OPENCODE=0 "$here/rootfs-alpine.sh"
	check "rootfs-alpine: ... leaving nothing" nothing_left "$T/out-alpine4"
	check "rootfs-alpine: ... and no mount" no_mounts_under "$T"
fi

echo
echo "$passes passed, $failures failed, $skips skipped"
[ "$failures" = 0 ]
