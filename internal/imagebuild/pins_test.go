package imagebuild

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
)

func TestDevboxPins(t *testing.T) {
	p := DevboxPins()
	glibc := p.Versions("x86_64", "glibc")
	for _, tool := range []string{"mise", "opencode", "claude", "pi", "node", "npm"} {
		if glibc[tool] == "" {
			t.Errorf("no glibc x86_64 pin for %s", tool)
		}
	}
	if musl := p.Versions("x86_64", "musl"); len(musl) != 1 || musl["opencode"] == "" {
		t.Errorf("musl pins = %v; want opencode only", musl)
	}
	script := DevboxSteps(false)[1]
	if script.Name != "devbox/tools" || !bytes.Contains(script.Script, []byte("opencode x86_64 glibc bin opencode-linux-x64 "+glibc["opencode"])) {
		t.Errorf("the tools step does not carry the opencode pin:\n%.600s", script.Script)
	}
}

// pinFS is a manifest with one bin pin for tgz and the real step body.
func pinFS(t *testing.T, tgz []byte, extra ...Pin) fstest.MapFS {
	t.Helper()
	sum := sha512.Sum512(tgz)
	pins := Pins{Registry: "https://registry.example", Packages: append([]Pin{{
		Tool: "hello", Arch: hostArch(t), Libc: "glibc", Kind: "bin", Package: "@banger/hello-linux", Version: "1.2.3",
		Integrity: "sha512-" + base64.StdEncoding.EncodeToString(sum[:]), Path: "package/bin/hello",
	}}, extra...)}
	manifest, _ := json.Marshal(pins)
	body, err := devboxFS.ReadFile("devbox/20-tools.sh")
	if err != nil {
		t.Fatal(err)
	}
	return fstest.MapFS{"devbox/tools.json": {Data: manifest}, "devbox/20-tools.sh": {Data: body}}
}

func hostArch(t *testing.T) string {
	out, err := exec.Command("uname", "-m").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// npmTarball is an npm package tarball holding package/bin/hello.
func npmTarball(t *testing.T, hello string) []byte {
	t.Helper()
	return tarballOf(t, map[string]string{"package/package.json": `{"name":"@banger/hello-linux"}`, "package/bin/hello": hello})
}

// tarballOf is a .tgz of files (name: content), all mode 0755.
func tarballOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, data := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write([]byte(data))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// runToolsStep runs the rendered tools step against a registry serving
// served at the pinned package's tarball URL.
func runToolsStep(t *testing.T, fsys fstest.MapFS, served []byte, bestEffort bool) (prefix string, out []byte, err error) {
	t.Helper()
	if _, err := os.Stat("/etc/alpine-release"); err == nil {
		t.Skip("the test pins are for glibc")
	}
	var hits atomic.Int64
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/@banger/hello-linux/-/hello-linux-1.2.3.tgz" {
			http.NotFound(w, r)
			return
		}
		hits.Add(1)
		w.Write(served)
	}))
	defer reg.Close()
	p, err := ParsePins(fsys)
	if err != nil {
		t.Fatal(err)
	}
	script, err := toolsScript(fsys, p)
	if err != nil {
		t.Fatal(err)
	}
	prefix = t.TempDir()
	cmd := exec.Command("sh", "-e", writeStep(t, script))
	cmd.Env = []string{"PATH=/usr/bin:/bin", "BANGER_NPM_REGISTRY=" + reg.URL, "BANGER_TOOLS_PREFIX=" + prefix, "BANGER_ROOT_HOME=" + t.TempDir(), "BANGER_TOOLS_TMP=" + t.TempDir()}
	if bestEffort {
		cmd.Env = append(cmd.Env, "BANGER_BEST_EFFORT=1")
	}
	out, err = cmd.CombinedOutput()
	if hits.Load() == 0 {
		t.Fatalf("the step never fetched the pinned tarball:\n%s", out)
	}
	return prefix, out, err
}

func TestToolsStepInstallsThePinnedTarball(t *testing.T) {
	tgz := npmTarball(t, "#!/bin/sh\necho hello 1.2.3\n")
	prefix, out, err := runToolsStep(t, pinFS(t, tgz), tgz, false)
	if err != nil {
		t.Fatalf("tools step: %v\n%s", err, out)
	}
	got, err := exec.Command(filepath.Join(prefix, "bin", "hello")).Output()
	if err != nil || string(got) != "hello 1.2.3\n" {
		t.Errorf("installed hello: %q, %v", got, err)
	}
	rec, _ := os.ReadFile(filepath.Join(prefix, "share", "banger", "devbox-tools"))
	if !strings.HasPrefix(string(rec), "hello 1.2.3 @banger/hello-linux ") {
		t.Errorf("record of installed tools = %q", rec)
	}
}

func TestToolsStepRefusesATamperedTarball(t *testing.T) {
	good := npmTarball(t, "#!/bin/sh\necho hello 1.2.3\n")
	tampered := npmTarball(t, "#!/bin/sh\necho owned\n")
	for _, bestEffort := range []bool{false, true} {
		prefix, out, err := runToolsStep(t, pinFS(t, good), tampered, bestEffort)
		if bestEffort != (err == nil) {
			t.Errorf("best effort %v: step error %v; want failure only when not best effort\n%s", bestEffort, err, out)
		}
		if !bytes.Contains(out, []byte("is not the pinned")) || !bytes.Contains(out, []byte("refusing it")) {
			t.Errorf("best effort %v: output does not say the tarball was refused:\n%s", bestEffort, out)
		}
		if _, err := os.Stat(filepath.Join(prefix, "bin", "hello")); err == nil {
			t.Errorf("best effort %v: the tampered tool was installed", bestEffort)
		}
		if rec, _ := os.ReadFile(filepath.Join(prefix, "share", "banger", "devbox-tools")); bytes.Contains(rec, []byte("hello")) {
			t.Errorf("best effort %v: the record lists the refused tool: %q", bestEffort, rec)
		}
	}
}

func TestParsePinsRefuses(t *testing.T) {
	lock := func(entries string) string {
		return `{"lockfileVersion":3,"packages":{"":{"name":"x"},"node_modules/pi-agent":{"version":"1.0.0","integrity":"` + integrityOf([]byte("x")) + `"}` + entries + `}}`
	}
	cases := []struct {
		name string
		pin  func(*Pin)
		lock string
		want string
	}{
		{"sha1 integrity", func(p *Pin) { p.Integrity = "sha1-2jmj7l5rSw0yVb/vlWAYkK/YBwk=" }, "", "not sha512"},
		{"short digest", func(p *Pin) { p.Integrity = "sha512-AAAA" }, "", "not a SHA-512"},
		{"range version", func(p *Pin) { p.Version = "^1.2.3" }, "", "exact version"},
		{"shell in name", func(p *Pin) { p.Package = "x;rm -rf /" }, "", "npm name"},
		{"escaping path", func(p *Pin) { p.Path = "../etc/passwd" }, "", "clean relative path"},
		{"unknown kind", func(p *Pin) { p.Kind = "script" }, "", "kind"},
		{"none with a package", func(p *Pin) { p.Kind = "none"; p.Reason = "not published" }, "", "takes a reason and no package"},
		{"none without a reason", func(p *Pin) { *p = Pin{Tool: "mise", Arch: "aarch64", Libc: "glibc", Kind: "none"} }, "", "takes a reason"},
		{"lock without integrity", func(p *Pin) { *p = lockPin() }, lock(`,"node_modules/dep":{"version":"2.0.0"}`), "no sha512 integrity"},
		{"lock at another version", func(p *Pin) { *p = lockPin(); p.Version = "1.0.1" }, lock(""), "regenerate the lockfile"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			good := npmTarball(t, "x")
			fsys := pinFS(t, good)
			var pins Pins
			json.Unmarshal(fsys["devbox/tools.json"].Data, &pins)
			c.pin(&pins.Packages[0])
			fsys["devbox/tools.json"].Data, _ = json.Marshal(pins)
			if c.lock != "" {
				fsys["devbox/pi/package-lock.json"] = &fstest.MapFile{Data: []byte(c.lock)}
				fsys["devbox/pi/package.json"] = &fstest.MapFile{Data: []byte(`{}`)}
			}
			_, err := ParsePins(fsys)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("ParsePins: %v; want an error saying %q", err, c.want)
			}
		})
	}
	// And the good lockfile passes.
	fsys := pinFS(t, npmTarball(t, "x"), lockPin())
	fsys["devbox/pi/package-lock.json"] = &fstest.MapFile{Data: []byte(lock(""))}
	fsys["devbox/pi/package.json"] = &fstest.MapFile{Data: []byte(`{}`)}
	if _, err := ParsePins(fsys); err != nil {
		t.Errorf("a valid manifest: %v", err)
	}
}

func lockPin() Pin {
	return Pin{Tool: "pi", Arch: "x86_64", Libc: "glibc", Kind: "lock", Package: "pi-agent", Version: "1.0.0", Lock: "pi", Path: "node_modules/.bin/pi"}
}

// TestDevboxPinsCoverEveryArch: a build on any supported arch gets every
// tool of its libc, or a manifest entry saying why the registry has none;
// each tool is pinned once per arch and libc, and every pin is one the
// step can verify (ParsePins checks the form of each).
func TestDevboxPinsCoverEveryArch(t *testing.T) {
	p, err := ParsePins(devboxFS)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]Pin{}
	for _, pin := range p.Packages {
		k := pin.Tool + "/" + pin.Arch + "/" + pin.Libc
		if _, dup := seen[k]; dup {
			t.Errorf("%s is pinned twice", k)
		}
		seen[k] = pin
		if !slices.Contains(DevboxArches, pin.Arch) {
			t.Errorf("%s: arch %s is not one the build supports (%v)", k, pin.Arch, DevboxArches)
		}
		if !slices.Contains(DevboxTools[pin.Libc], pin.Tool) {
			t.Errorf("%s: %s is not a %s tool (%v)", k, pin.Tool, pin.Libc, DevboxTools[pin.Libc])
		}
	}
	for _, arch := range DevboxArches {
		for libc, tools := range DevboxTools {
			for _, tool := range tools {
				pin, ok := seen[tool+"/"+arch+"/"+libc]
				switch {
				case !ok:
					t.Errorf("no pin for %s on %s (%s): add one to devbox/tools.json, or a kind none entry saying why", tool, arch, libc)
				case pin.Kind == "none":
					t.Logf("%s on %s (%s): none (%s)", tool, arch, libc, pin.Reason)
				case pin.Kind != "lock":
					// A platform package is for its arch: npm names arm64
					// and x64, uname aarch64 and x86_64.
					npmArch := map[string]string{"x86_64": "x64", "aarch64": "arm64"}[arch]
					if pin.Package != "npm" && !strings.Contains(pin.Package, "-linux-"+npmArch) {
						t.Errorf("%s on %s: package %s is not the linux-%s build", tool, arch, pin.Package, npmArch)
					}
					if (libc == "musl") != strings.HasSuffix(pin.Package, "-musl") {
						t.Errorf("%s on %s (%s): package %s is for the other libc", tool, arch, libc, pin.Package)
					}
				}
			}
		}
	}
	// The tools step carries them all: an aarch64 guest finds its pins.
	script := string(DevboxSteps(false)[1].Script)
	for _, want := range []string{"opencode aarch64 glibc bin opencode-linux-arm64 ", "mise aarch64 glibc none - - - - -"} {
		if !strings.Contains(script, want) {
			t.Errorf("the tools step lacks %q", want)
		}
	}
}

// TestToolsStepNotesAToolWithoutABuild: a "none" entry is no failure
// (even without best effort): the step says the tool is not available and
// installs the others.
func TestToolsStepNotesAToolWithoutABuild(t *testing.T) {
	tgz := npmTarball(t, "#!/bin/sh\necho hello 1.2.3\n")
	fsys := pinFS(t, tgz, Pin{Tool: "mise", Arch: hostArch(t), Libc: "glibc", Kind: "none", Reason: "not published"})
	prefix, out, err := runToolsStep(t, fsys, tgz, false)
	if err != nil {
		t.Fatalf("tools step: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "mise is not available for "+hostArch(t)+" (glibc)") {
		t.Errorf("the step does not say mise is not available:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(prefix, "bin", "hello")); err != nil {
		t.Errorf("the other tool was not installed: %v", err)
	}
}

// writeStep writes a step's script to a file, as the build uploads it
// (step.sh, run with sh -e): too long for an argument.
func writeStep(t *testing.T, script []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "step.sh")
	if err := os.WriteFile(p, script, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}
