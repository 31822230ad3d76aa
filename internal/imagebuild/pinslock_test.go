package imagebuild

import (
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// lockFS is a manifest with one lock pin (tool "hi", package "hi-cli"
// 1.0.0) whose lockfile records integrity.
func lockFS(t *testing.T, integrity string) fstest.MapFS {
	t.Helper()
	pins := Pins{Registry: "https://registry.example", Packages: []Pin{{
		Tool: "hi", Arch: hostArch(t), Libc: "glibc", Kind: "lock", Package: "hi-cli", Version: "1.0.0", Lock: "hi", Path: "node_modules/.bin/hi",
	}}}
	manifest, _ := json.Marshal(pins)
	body, err := devboxFS.ReadFile("devbox/20-tools.sh")
	if err != nil {
		t.Fatal(err)
	}
	lock := `{"name":"banger-hi","lockfileVersion":3,"requires":true,"packages":{` +
		`"":{"name":"banger-hi","dependencies":{"hi-cli":"1.0.0"}},` +
		`"node_modules/hi-cli":{"version":"1.0.0","integrity":"` + integrity + `","bin":{"hi":"hi.js"}}}}`
	return fstest.MapFS{
		"devbox/tools.json":           {Data: manifest},
		"devbox/20-tools.sh":          {Data: body},
		"devbox/hi/package.json":      {Data: []byte(`{"name":"banger-hi","private":true,"dependencies":{"hi-cli":"1.0.0"}}`)},
		"devbox/hi/package-lock.json": {Data: []byte(lock)},
	}
}

// runLockStep runs the tools step for lockFS against a registry serving
// tgz as hi-cli 1.0.0 (the packument announcing integrity), with the
// host's node and npm standing in for the pinned ones.
func runLockStep(t *testing.T, tgz []byte, integrity string) (prefix string, out []byte, err error) {
	t.Helper()
	node, nerr := exec.LookPath("node")
	npm, perr := exec.LookPath("npm")
	if nerr != nil || perr != nil {
		t.Skip("needs node and npm on the host to stand in for the pinned ones")
	}
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hi-cli":
			json.NewEncoder(w).Encode(map[string]any{"name": "hi-cli", "dist-tags": map[string]string{"latest": "1.0.0"},
				"versions": map[string]any{"1.0.0": map[string]any{"name": "hi-cli", "version": "1.0.0", "bin": map[string]string{"hi": "hi.js"},
					"dist": map[string]string{"tarball": "http://" + r.Host + "/hi-cli/-/hi-cli-1.0.0.tgz", "integrity": integrity}}}})
		case "/hi-cli/-/hi-cli-1.0.0.tgz":
			w.Write(tgz)
		default:
			http.NotFound(w, r)
		}
	}))
	defer reg.Close()
	fsys := lockFS(t, integrity)
	p, err := ParsePins(fsys)
	if err != nil {
		t.Fatal(err)
	}
	script, err := toolsScript(fsys, p)
	if err != nil {
		t.Fatal(err)
	}
	prefix = t.TempDir()
	os.MkdirAll(filepath.Join(prefix, "bin"), 0o755)
	os.Symlink(node, filepath.Join(prefix, "bin", "node"))
	os.Symlink(npm, filepath.Join(prefix, "bin", "npm"))
	cmd := exec.Command("sh", "-e", writeStep(t, script))
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "BANGER_NPM_REGISTRY=" + reg.URL,
		"BANGER_TOOLS_PREFIX=" + prefix, "BANGER_ROOT_HOME=" + t.TempDir(), "BANGER_TOOLS_TMP=" + t.TempDir(),
		// npm retries a failed integrity check with back-off; once is enough here.
		"npm_config_fetch_retries=0"}
	out, err = cmd.CombinedOutput()
	return prefix, out, err
}

func hiPackage(t *testing.T, says string) []byte {
	t.Helper()
	return tarballOf(t, map[string]string{
		"package/package.json": `{"name":"hi-cli","version":"1.0.0","bin":{"hi":"hi.js"}}`,
		"package/hi.js":        "#!/usr/bin/env node\nconsole.log(" + says + ")\n",
	})
}

func integrityOf(b []byte) string {
	sum := sha512.Sum512(b)
	return "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
}

func TestToolsStepInstallsALockfile(t *testing.T) {
	tgz := hiPackage(t, `"hi 1.0.0"`)
	prefix, out, err := runLockStep(t, tgz, integrityOf(tgz))
	if err != nil {
		t.Fatalf("tools step: %v\n%s", err, out)
	}
	cmd := exec.Command(filepath.Join(prefix, "bin", "hi"))
	cmd.Env = []string{"PATH=" + filepath.Join(prefix, "bin") + ":/usr/bin:/bin"}
	if got, err := cmd.CombinedOutput(); err != nil || string(got) != "hi 1.0.0\n" {
		t.Errorf("installed hi: %q, %v\n%s", got, err, out)
	}
	if _, err := os.Stat(filepath.Join(prefix, "lib", "banger-hi", "node_modules", "hi-cli", "hi.js")); err != nil {
		t.Errorf("npm ci did not install into lib/banger-hi: %v", err)
	}
}

func TestToolsStepRefusesATamperedLockedPackage(t *testing.T) {
	good := hiPackage(t, `"hi 1.0.0"`)
	prefix, out, err := runLockStep(t, hiPackage(t, `"owned"`), integrityOf(good))
	if err == nil {
		t.Fatalf("the step installed a package whose tarball does not match the lockfile:\n%s", out)
	}
	if !strings.Contains(string(out), "EINTEGRITY") && !strings.Contains(string(out), "integrity") {
		t.Errorf("the failure does not name the integrity check:\n%s", out)
	}
	if _, err := os.Lstat(filepath.Join(prefix, "bin", "hi")); err == nil {
		t.Error("the tampered tool was linked")
	}
}
