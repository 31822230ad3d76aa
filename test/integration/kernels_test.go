package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"banger/api"
)

// catalog is a kernel catalog with one good and one corrupt entry,
// served on loopback. Its vmlinux honours Range requests, as a static file
// server does, and can be told to cut every download short.
type catalog struct {
	*httptest.Server
	kernel []byte
	// truncate makes /vmlinux send half the file, announce all of it, and
	// drop the connection.
	truncate atomic.Bool
	// rangeGETs counts /vmlinux requests that asked for a tail.
	rangeGETs atomic.Int64
}

func catalogServer(t *testing.T) *catalog {
	t.Helper()
	kpath := filepath.Join(t.TempDir(), "vmlinux")
	mkKernel(t, kpath)
	c := &catalog{}
	c.kernel, _ = os.ReadFile(kpath)
	sum := sha256.Sum256(c.kernel)
	mux := http.NewServeMux()
	mux.HandleFunc("/vmlinux", c.serveKernel)
	mux.HandleFunc("/catalog.json", func(w http.ResponseWriter, r *http.Request) {
		file := api.CatalogFile{URL: c.URL + "/vmlinux", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(c.kernel))}
		bad := file
		bad.SHA256 = strings.Repeat("0", 64)
		json.NewEncoder(w).Encode(api.Catalog{SchemaVersion: 1, Kernels: []api.CatalogEntry{
			{Name: "k1", Version: "6.1.0", Arch: "x86_64", Description: "test kernel", Kernel: file},
			{Name: "corrupt", Version: "6.1.0", Arch: "x86_64", Kernel: bad},
		}})
	})
	c.Server = httptest.NewServer(mux)
	t.Cleanup(c.Close)
	return c
}

func (c *catalog) serveKernel(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Range") != "" {
		c.rangeGETs.Add(1)
	}
	if !c.truncate.Load() {
		w.Header().Set("ETag", `"k1-v1"`)
		http.ServeContent(w, r, "vmlinux", time.Time{}, bytes.NewReader(c.kernel))
		return
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(c.kernel)))
	w.Write(c.kernel[:len(c.kernel)/2])
	w.(http.Flusher).Flush()
	if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
		conn.Close()
	}
}

// regularFiles lists the regular files under dir.
func regularFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
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
	if left := regularFiles(t, h.layout.KernelsDir); len(left) != 0 {
		t.Errorf("files left behind by the failed pull: %v", left)
	}
}

// A pull cut short keeps its download and says how to resume; pulling
// again through the daemon fetches only the rest.
func TestKernelPullInterruptedThenResumed(t *testing.T) {
	srv := catalogServer(t)
	h := newHarness(t)
	h.writeConfig(`kernel_catalog_url = "` + srv.URL + `/catalog.json"` + "\n")

	srv.truncate.Store(true)
	_, errOut, code := h.banger("kernel", "pull", "k1")
	if code == 0 || !strings.Contains(errOut, "run 'banger kernel pull k1' again to resume") {
		t.Fatalf("truncated pull: exit %d, stderr %q; want a failure saying how to resume", code, errOut)
	}
	partial := filepath.Join(h.layout.KernelsDir, ".partial", "k1")
	if left := regularFiles(t, partial); len(left) == 0 {
		t.Fatalf("no partial download kept in %s", partial)
	}
	if out := h.ok("kernel", "list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("kernel list after a truncated pull = %s, want []", out)
	}

	srv.truncate.Store(false)
	out, errOut, code := h.banger("kernel", "pull", "k1", "--json")
	if code != 0 {
		t.Fatalf("second pull: exit %d, stderr %q", code, errOut)
	}
	if errOut != "" {
		t.Errorf("kernel pull wrote to a piped stderr: %q", errOut)
	}
	var k api.Kernel
	if err := json.Unmarshal([]byte(out), &k); err != nil {
		t.Fatal(err)
	}
	if got := fileSum(t, k.Kernel); got != sha256.Sum256(srv.kernel) {
		t.Errorf("resumed kernel %s differs from the served one", k.Kernel)
	}
	if srv.rangeGETs.Load() == 0 {
		t.Error("the second pull downloaded the whole file instead of resuming with a Range request")
	}
	if _, err := os.Stat(partial); !os.IsNotExist(err) {
		t.Errorf("partial download %s still exists after a complete pull (err %v)", partial, err)
	}
}

// 'kernel rm' discards an interrupted pull of a kernel that was never
// installed, and says so when there is nothing left to remove.
func TestKernelRmDiscardsPartialDownload(t *testing.T) {
	srv := catalogServer(t)
	h := newHarness(t)
	h.writeConfig(`kernel_catalog_url = "` + srv.URL + `/catalog.json"` + "\n")

	srv.truncate.Store(true)
	if _, errOut, code := h.banger("kernel", "pull", "k1"); code == 0 {
		t.Fatalf("truncated pull succeeded; stderr %q", errOut)
	}
	if left := regularFiles(t, h.layout.KernelsDir); len(left) == 0 {
		t.Fatal("the truncated pull kept nothing; the test cannot check rm")
	}
	h.ok("kernel", "rm", "k1")
	if left := regularFiles(t, h.layout.KernelsDir); len(left) != 0 {
		t.Errorf("files left after kernel rm: %v", left)
	}
	if _, errOut, code := h.banger("kernel", "rm", "k1"); code == 0 || !strings.Contains(errOut, "not pulled") {
		t.Errorf("kernel rm with nothing left: exit %d, stderr %q; want a 'not pulled' error", code, errOut)
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

	// --json: the same effective config, keyed like config.toml, with
	// durations and addresses as the strings the file holds.
	h.writeConfig("stats_poll_interval = \"2m\"\ndefault_dns = \"9.9.9.9, 1.1.1.1\"\n")
	var cfg map[string]any
	if err := json.Unmarshal([]byte(h.ok("config", "show", "--json")), &cfg); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]any{
		"bridge_ip": "172.16.0.1", "cidr": "172.16.0.0/24", "web_listen_addr": "127.0.0.1:7777", "vmm": "firecracker",
		"stats_poll_interval": "2m", "auto_stop_stale_after": "0", "default_dns": "9.9.9.9, 1.1.1.1", "tap_pool_size": float64(8),
	} {
		if cfg[key] != want {
			t.Errorf("config show --json: %s = %#v, want %#v", key, cfg[key], want)
		}
	}
	toml := h.ok("config", "show")
	for key := range cfg {
		if !strings.Contains(toml, "\n"+key+" = ") {
			t.Errorf("config show --json has %s, which the TOML output lacks", key)
		}
	}
	if n := strings.Count(toml, " = "); n != len(cfg) {
		t.Errorf("config show prints %d keys, --json %d", n, len(cfg))
	}

	h.writeConfig("bridge_nmae = \"x\"\n")
	_, errOut, code := h.banger("config", "show")
	if code == 0 || !strings.Contains(errOut, `config.toml:1: unknown key "bridge_nmae"; did you mean "bridge_name"?`) {
		t.Errorf("bad config: exit %d, stderr %q", code, errOut)
	}
	if _, errOut, code := h.banger("config", "show", "--json"); code == 0 || !strings.Contains(errOut, "bridge_nmae") {
		t.Errorf("bad config with --json: exit %d, stderr %q", code, errOut)
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
		if r.Status != "pass" && r.Fix == "" {
			t.Errorf("check %s is %s without a fix", r.Name, r.Status)
		}
	}
}
