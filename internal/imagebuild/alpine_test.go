package imagebuild

import (
	"bytes"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
)

// No Alpine package repository (nor minirootfs, nor Docker Hub) is
// reachable from here, so the Alpine branches of the devbox steps run in
// an Alpine stand-in: a root made of the host's static busybox (Alpine's
// userland), /etc/alpine-release, a musl loader, and apk and rc-update
// that record what they are asked (apk's curl is busybox wget behind
// curl's options). The steps themselves run unchanged, chrooted.

// alpineRoot builds the stand-in and returns it.
func alpineRoot(t *testing.T) string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("needs a static busybox (apt-get install busybox-static)")
	}
	if out, _ := exec.Command("file", "-L", bb).Output(); len(out) > 0 && !bytes.Contains(out, []byte("statically linked")) {
		t.Skipf("%s is not static", bb)
	}
	root := t.TempDir()
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "usr/local/bin", "etc/ssh", "lib", "var/tmp", "tmp", "root", "dev", "proc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"etc/alpine-release":                   "3.20.3\n",
		"etc/ssh/sshd_config":                  "#PermitRootLogin prohibit-password\n",
		"lib/ld-musl-" + hostArch(t) + ".so.1": "",
		"sbin/apk": `#!/bin/sh
echo "apk $*" >>/apk.log
case " $* " in *" curl "*)
	# curl [-fsSL] [--retry N] [--max-filesize N] -o OUT URL, through wget
	cat >/usr/bin/curl <<'CURL'
#!/bin/sh
out= url=
while [ $# -gt 0 ]; do
	case $1 in
	-o) out=$2; shift ;;
	--retry|--max-filesize) shift ;;
	-*) ;;
	*) url=$1 ;;
	esac
	shift
done
exec wget -q -O "$out" "$url"
CURL
	chmod 0755 /usr/bin/curl ;;
esac
`,
		"sbin/rc-update": "#!/bin/sh\necho \"rc-update $*\" >>/rc.log\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := chrooted(t, root, nil, "/bin/busybox", "--install", "-s", "/bin"); err != nil {
		t.Fatalf("busybox --install: %v\n%s", err, out)
	}
	return root
}

// chrooted runs argv in root: chrooted as root, else in a user namespace
// of its own (skipping where neither is allowed).
func chrooted(t *testing.T, root string, env []string, argv ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = "/"
	cmd.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME=/root"}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	if os.Geteuid() != 0 {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	}
	out, err := cmd.CombinedOutput()
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) {
		t.Skipf("cannot chroot here (not root, and no user namespaces): %v", err)
	}
	return out, err
}

// runStep writes script into root and runs it there as the build does.
func runStep(t *testing.T, root string, script []byte, env ...string) ([]byte, error) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, "tmp", "step.sh"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	return chrooted(t, root, env, "/bin/sh", "-e", "/tmp/step.sh")
}

// TestDevboxStepsOnAlpine runs the devbox base and tools steps in the
// Alpine stand-in: the base step asks apk for sshd, openrc and opencode's
// libraries and enables sshd; the tools step takes the musl pin only
// (opencode; the glibc ones are not for Alpine), checks it, installs it
// with busybox's tools and writes the OpenRC service, enabled at boot.
func TestDevboxStepsOnAlpine(t *testing.T) {
	root := alpineRoot(t)
	out, err := runStep(t, root, DevboxSteps(false)[0].Script)
	if err != nil {
		t.Fatalf("base step: %v\n%s", err, out)
	}
	read := func(p string) string {
		b, _ := os.ReadFile(filepath.Join(root, p))
		return string(b)
	}
	if got := read("apk.log"); got != "apk add --no-cache openssh git curl ca-certificates openrc libstdc++ libgcc\n" {
		t.Errorf("base step asked apk: %q", got)
	}
	if !strings.Contains(read("etc/ssh/sshd_config.d/banger.conf"), "PermitRootLogin prohibit-password") ||
		!strings.HasPrefix(read("etc/ssh/sshd_config"), "Include /etc/ssh/sshd_config.d/*.conf\n") {
		t.Errorf("sshd is not configured for banger:\n%s\n%s", read("etc/ssh/sshd_config"), read("etc/ssh/sshd_config.d/banger.conf"))
	}

	// The tools step, from a manifest with a musl opencode and glibc
	// tools, against a registry on the loopback.
	tgz := tarballOf(t, map[string]string{"package/package.json": `{}`, "package/bin/opencode": "#!/bin/sh\necho opencode 9.9.9 musl\n"})
	sum := sha512.Sum512(tgz)
	integrity := "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
	arch, npmArch := hostArch(t), map[string]string{"x86_64": "x64", "aarch64": "arm64"}[hostArch(t)]
	musl := "opencode-linux-" + npmArch + "-musl"
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/"+musl+"/-/"+musl+"-9.9.9.tgz" {
			http.NotFound(w, r)
			return
		}
		w.Write(tgz)
	}))
	defer reg.Close()
	pins := Pins{Registry: "https://registry.example", Packages: []Pin{
		{Tool: "opencode", Arch: arch, Libc: "musl", Kind: "bin", Package: musl, Version: "9.9.9", Integrity: integrity, Path: "package/bin/opencode"},
		{Tool: "opencode", Arch: arch, Libc: "glibc", Kind: "bin", Package: "opencode-linux-" + npmArch, Version: "9.9.9", Integrity: integrity, Path: "package/bin/opencode"},
		{Tool: "mise", Arch: arch, Libc: "glibc", Kind: "bin", Package: "@jdxcode/mise-linux-" + npmArch, Version: "1.0.0", Integrity: integrity, Path: "package/bin/mise"},
	}}
	manifest, _ := json.Marshal(pins)
	fsys := fstest.MapFS{"devbox/tools.json": {Data: manifest}}
	for _, f := range []string{"20-tools.sh", "30-opencode-service.sh"} {
		b, _ := devboxFS.ReadFile("devbox/" + f)
		fsys["devbox/"+f] = &fstest.MapFile{Data: b}
	}
	p, err := ParsePins(fsys)
	if err != nil {
		t.Fatal(err)
	}
	script, err := toolsScript(fsys, p)
	if err != nil {
		t.Fatal(err)
	}
	service, _ := devboxFS.ReadFile("devbox/30-opencode-service.sh")
	out, err = runStep(t, root, append(script, service...), "BANGER_NPM_REGISTRY="+reg.URL)
	if err != nil {
		t.Fatalf("tools step: %v\n%s", err, out)
	}
	if got, err := chrooted(t, root, nil, "/usr/local/bin/opencode"); err != nil || string(got) != "opencode 9.9.9 musl\n" {
		t.Errorf("installed opencode: %q, %v\n%s", got, err, out)
	}
	if _, err := os.Stat(filepath.Join(root, "usr/local/bin/mise")); err == nil {
		t.Error("a glibc tool was installed on musl")
	}
	if rec := read("usr/local/share/banger/devbox-tools"); !strings.HasPrefix(rec, "opencode 9.9.9 "+musl+" ") || strings.Count(rec, "\n") != 1 {
		t.Errorf("record: %q", rec)
	}
	rc := read("etc/init.d/opencode")
	for _, want := range []string{"#!/sbin/openrc-run\n", "supervisor=supervise-daemon\n", "command=/usr/local/bin/opencode\n", `command_args="serve --hostname 0.0.0.0 --port 4096"`} {
		if !strings.Contains(rc, want) {
			t.Errorf("the OpenRC service lacks %q:\n%s", want, rc)
		}
	}
	if out, err := chrooted(t, root, nil, "/bin/sh", "-n", "/etc/init.d/opencode"); err != nil {
		t.Errorf("the OpenRC service is not valid sh: %v\n%s", err, out)
	}
	if got := read("rc.log"); got != "rc-update add sshd default\nrc-update add opencode default\n" {
		t.Errorf("rc-update calls: %q", got)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/systemd")); err == nil {
		t.Error("a systemd unit was written on Alpine")
	}
}
