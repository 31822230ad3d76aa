package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"banger/internal/api"
)

// catalogServer serves a kernel catalog with one good and one corrupt
// entry on loopback.
func catalogServer(t *testing.T) *httptest.Server {
	t.Helper()
	kpath := filepath.Join(t.TempDir(), "vmlinux")
	mkKernel(t, kpath)
	kdata, _ := os.ReadFile(kpath)
	sum := sha256.Sum256(kdata)
	mux := http.NewServeMux()
	var srv *httptest.Server
	mux.HandleFunc("/vmlinux", func(w http.ResponseWriter, r *http.Request) { w.Write(kdata) })
	mux.HandleFunc("/catalog.json", func(w http.ResponseWriter, r *http.Request) {
		file := api.CatalogFile{URL: srv.URL + "/vmlinux", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(kdata))}
		bad := file
		bad.SHA256 = strings.Repeat("0", 64)
		json.NewEncoder(w).Encode(api.Catalog{SchemaVersion: 1, Kernels: []api.CatalogEntry{
			{Name: "k1", Version: "6.1.0", Arch: "x86_64", Description: "test kernel", Kernel: file},
			{Name: "corrupt", Version: "6.1.0", Arch: "x86_64", Kernel: bad},
		}})
	})
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestKernelCatalogPullUseRemove(t *testing.T) {
	srv := catalogServer(t)
	h := newHarness(t)
	h.writeConfig(`kernel_catalog_url = "` + srv.URL + `/catalog.json"` + "\n")

	var avail []api.CatalogEntry
	if err := json.Unmarshal([]byte(h.ok("kernel", "list", "--available", "--json")), &avail); err != nil {
		t.Fatal(err)
	}
	if len(avail) != 2 || avail[0].Pulled {
		t.Fatalf("available = %+v, want k1 and corrupt, not pulled", avail)
	}

	var k api.Kernel
	if err := json.Unmarshal([]byte(h.ok("kernel", "pull", "k1", "--json")), &k); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k.Kernel, h.layout.KernelsDir+"/") || k.Version != "6.1.0" {
		t.Fatalf("pulled kernel = %+v", k)
	}
	if _, errOut, code := h.banger("kernel", "pull", "k1"); code == 0 || !strings.Contains(errOut, "already pulled") {
		t.Errorf("second pull: exit %d, stderr %q", code, errOut)
	}

	rootfs := filepath.Join(t.TempDir(), "r.ext4")
	mkExt4(t, rootfs, 16)
	h.ok("image", "register", "--name", "withref", "--rootfs", rootfs, "--kernel-ref", "k1")
	if _, errOut, code := h.banger("kernel", "rm", "k1"); code == 0 || !strings.Contains(errOut, "withref") {
		t.Errorf("kernel rm while used: exit %d, stderr %q; want refusal naming the image", code, errOut)
	}
	h.ok("image", "delete", "withref")
	h.ok("kernel", "rm", "k1")
	if _, err := os.Stat(k.Dir); !os.IsNotExist(err) {
		t.Errorf("kernel dir %s still exists after rm", k.Dir)
	}

	_, errOut, code := h.banger("kernel", "pull", "corrupt")
	if code == 0 || !strings.Contains(errOut, "sha256 mismatch") {
		t.Errorf("corrupt pull: exit %d, stderr %q; want a sha256 mismatch", code, errOut)
	}
	if out := h.ok("kernel", "list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("kernel list after failed pull = %s", out)
	}
	err := filepath.Walk(h.layout.KernelsDir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			t.Errorf("file left behind by the failed pull: %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestConfigShowAndBadConfig(t *testing.T) {
	h := newHarness(t)
	out := h.ok("config", "show")
	for _, want := range []string{`bridge_ip = "172.16.0.1"`, `cidr = "172.16.0.0/24"`, `web_listen_addr = "127.0.0.1:7777"`, `vmm = "firecracker"`} {
		if !strings.Contains(out, want) {
			t.Errorf("config show lacks %s:\n%s", want, out)
		}
	}
	h.writeConfig("bridge_nmae = \"x\"\n")
	_, errOut, code := h.banger("config", "show")
	if code == 0 || !strings.Contains(errOut, `config.toml:1: unknown key "bridge_nmae"; did you mean "bridge_name"?`) {
		t.Errorf("bad config: exit %d, stderr %q", code, errOut)
	}
	// The daemon refuses to start on a bad config, with the same message.
	_, errOut, code = h.banger("daemon", "start")
	if code == 0 || !strings.Contains(errOut, "bridge_nmae") {
		t.Errorf("daemon start with bad config: exit %d, stderr %q", code, errOut)
	}
}

func TestDoctorReportsAndFailsWithFixes(t *testing.T) {
	h := newHarness(t)
	h.writeConfig("vmm = \"firecracker\"\nfirecracker_bin = \"/nonexistent/firecracker\"\n")
	out, _, code := h.banger("doctor")
	if code != 1 {
		t.Errorf("doctor exit = %d, want 1 with a missing firecracker", code)
	}
	if !strings.Contains(out, "FAIL  vmm") || !strings.Contains(out, "fix:") {
		t.Errorf("doctor output lacks a failing vmm check with a fix:\n%s", out)
	}
	var rs []struct{ Name, Status, Fix string }
	jout, _, _ := h.banger("doctor", "--json")
	if err := json.Unmarshal([]byte(jout), &rs); err != nil || len(rs) < 8 {
		t.Fatalf("doctor --json: %v, %d results", err, len(rs))
	}
	for _, r := range rs {
		if r.Status != "pass" && r.Fix == "" && r.Name != "daemon" {
			t.Errorf("check %s is %s without a fix", r.Name, r.Status)
		}
	}
}
