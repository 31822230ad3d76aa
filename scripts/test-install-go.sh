#!/usr/bin/env bash
# test-install-go.sh: offline tests of scripts/install-go against a fake Go
# module proxy this script serves on 127.0.0.1: a toolchain zip whose
# go prints its version, and the checksum database record of that zip.
# Checks: a usable go is kept; a missing one is installed, linked and
# runs; a zip that does not match the checksum database's record, a record
# that is missing, and an entry escaping the toolchain directory are each
# refused with nothing installed.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/banger-install-go.XXXXXX")
server=
trap '[ -z "$server" ] || kill "$server" 2>/dev/null; rm -rf "$T"' EXIT
passed=0 failed=0
ok() { echo "ok    $1"; passed=$((passed + 1)); }
bad() { echo "FAIL  $1"; failed=$((failed + 1)); }
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what"; fi; }

want=$(awk '$1 == "go" { print $2; exit }' "$here/../go.mod")
case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64 | arm64) arch=arm64 ;; *) echo "skip: $(uname -m)"; exit 0 ;; esac
mod=golang.org/toolchain ver=v0.0.1-go$want.linux-$arch

# make_proxy DIR MODE: a proxy tree in DIR; MODE good|tampered|nosum|escape.
make_proxy() {
	python3 - "$1" "$2" "$mod" "$ver" "$want" <<'PY'
import base64, hashlib, io, os, sys, zipfile
d, mode, mod, ver, want = sys.argv[1:]
prefix = f"{mod}@{ver}"
files = {
    "bin/go": f"#!/bin/sh\n[ \"$1 $2\" = 'env GOVERSION' ] && echo go{want} && exit 0\necho go version go{want} fake\n",
    "bin/gofmt": "#!/bin/sh\nexit 0\n",
    "VERSION": f"go{want}\n",
}
if mode == "escape":
    files["../../evil"] = "outside\n"
def pack(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            info = zipfile.ZipInfo(f"{prefix}/{name}")
            info.external_attr = (0o755 if name.startswith("bin/") else 0o644) << 16
            z.writestr(info, data)
    return buf.getvalue()
data = pack(files)
z = zipfile.ZipFile(io.BytesIO(data))
names = sorted(f"{prefix}/{n}" for n in files)
lines = "".join(f"{hashlib.sha256(z.read(n)).hexdigest()}  {n}\n" for n in names)
h1 = "h1:" + base64.b64encode(hashlib.sha256(lines.encode()).digest()).decode()
if mode == "tampered":  # a well-formed zip, but not the one the record is of
    files["bin/go"] += "echo pwned\n"
    data = pack(files)
os.makedirs(f"{d}/{mod}/@v", exist_ok=True)
open(f"{d}/{mod}/@v/{ver}.zip", "wb").write(data)
os.makedirs(f"{d}/sumdb/sum.golang.org/lookup/{mod}", exist_ok=True)
rec = f"1234\n{mod} {ver} {h1}\n{mod} {ver}/go.mod h1:x\n\ngo.sum database tree\n"
if mode == "nosum":
    rec = "1234\n"
open(f"{d}/sumdb/sum.golang.org/lookup/{mod}@{ver}", "w").write(rec)
PY
}

mkdir -p "$T/www"
port_file=$T/port
python3 - "$T/www" "$port_file" <<'PY' &
import http.server, os, socketserver, sys
os.chdir(sys.argv[1])
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
with socketserver.TCPServer(("127.0.0.1", 0), Quiet) as s:
    open(sys.argv[2], "w").write(str(s.server_address[1]))
    s.serve_forever()
PY
server=$!
for _ in $(seq 50); do [ -s "$port_file" ] && break; sleep 0.1; done
proxy=http://127.0.0.1:$(cat "$port_file")

# run_install MODE: install-go with no go on PATH, into $T/MODE.
run_install() {
	rm -rf "$T/www"/* && make_proxy "$T/www" "$1"
	env -i HOME="$T/home-$1" PATH=/usr/bin:/bin BANGER_GO_NO_PATH=1 GOPROXY="$proxy" \
		BANGER_GO_ROOT="$T/$1/go" BANGER_GO_BINDIR="$T/$1/bin" "$here/install-go"
}

out=$(run_install good 2>/dev/null) || true
check "installs go when there is none" test "$out" = "$T/good/go/bin/go"
check "the installed go runs" test "$("$T/good/bin/go" env GOVERSION)" = "go$want"
check "gofmt is linked too" test -L "$T/good/bin/gofmt"
out=$(env -i HOME="$T/home-good" PATH="$T/good/bin:/usr/bin:/bin" GOPROXY="$proxy" BANGER_GO_ROOT="$T/good/go" BANGER_GO_BINDIR="$T/good/bin" "$here/install-go" 2>/dev/null) || true
check "a usable go is kept" test "$out" = "$T/good/bin/go"
out=$(env -i HOME="$T/home-good" PATH=/usr/bin:/bin BANGER_GO_NO_PATH=1 BANGER_GO_ROOT="$T/good/go" BANGER_GO_BINDIR="$T/good/bin" "$here/install-go" --which 2>/dev/null) || true
check "--which finds the installed go off PATH" test "$out" = "$T/good/go/bin/go"
# shellcheck disable=SC2016 # expanded by the inner bash
check "--which installs nothing and fails without a go" bash -c '! env -i HOME="$1" PATH=/usr/bin:/bin BANGER_GO_NO_PATH=1 BANGER_GO_ROOT="$1/none/go" BANGER_GO_BINDIR="$1/none/bin" "$2" --which && test ! -e "$1/none"' _ "$T" "$here/install-go"

for mode in tampered nosum escape; do
	if run_install "$mode" >"$T/$mode.out" 2>"$T/$mode.err"; then
		bad "$mode: refused"
	else
		ok "$mode: refused ($(tail -1 "$T/$mode.err"))"
	fi
	check "$mode: nothing installed" test ! -e "$T/$mode/go" -a ! -e "$T/$mode/bin/go"
done
check "escape: nothing written outside" test ! -e "$T/evil" -a ! -e "$T/../evil"

echo
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
