package imagebuild

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, path, data string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestKeysChangeFromTheChangedStep(t *testing.T) {
	dir := t.TempDir()
	pkg := write(t, filepath.Join(dir, "hello.deb"), "v1")
	steps := []Step{
		{Name: "a", Script: []byte("echo a")},
		{Name: "b", Script: []byte("echo b"), Files: []string{pkg}},
		{Name: "c", Script: []byte("echo c")},
	}
	k1, err := Keys("base", steps)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := Keys("base", steps); !slices.Equal(k1, again) {
		t.Fatal("keys of the same inputs differ")
	}
	write(t, pkg, "v2")
	k2, _ := Keys("base", steps)
	if k2[0] != k1[0] || k2[1] == k1[1] || k2[2] == k1[2] {
		t.Errorf("changing step b's file: keys %v -> %v; want a kept, b and c changed", k1, k2)
	}
	steps[2].Script = []byte("echo C")
	k3, _ := Keys("base", steps)
	if k3[1] != k2[1] || k3[2] == k2[2] {
		t.Error("changing step c's script changed an earlier key or not its own")
	}
	if k4, _ := Keys("other", steps); k4[0] == k3[0] {
		t.Error("another base gives the same first key")
	}
	os.Remove(pkg)
	if _, err := Keys("base", steps); err == nil {
		t.Error("a missing step file is not an error")
	}
}

func TestBaseKey(t *testing.T) {
	dir := t.TempDir()
	b := Base{Image: "deb", Rootfs: write(t, filepath.Join(dir, "rootfs.ext4"), "root"), Size: 1 << 30}
	k1, err := b.Key()
	if err != nil {
		t.Fatal(err)
	}
	b.Size = 2 << 30
	if k2, _ := b.Key(); k2 == k1 {
		t.Error("the build size is not part of the base key")
	}
	b.Rootfs = filepath.Join(dir, "missing")
	if _, err := b.Key(); err == nil {
		t.Error("a missing base rootfs is not an error")
	}
}

func TestCacheStoreLongestPrune(t *testing.T) {
	ctx := context.Background()
	c := Cache{Dir: filepath.Join(t.TempDir(), "cache")}
	src := t.TempDir()
	write(t, filepath.Join(src, RootfsFile), "rootfs")
	write(t, filepath.Join(src, WorkSeedFile), "work")
	keys := []string{"aaaaaaaaaaaaaaaa1", "bbbbbbbbbbbbbbbb2", "cccccccccccccccc3"}
	if n := c.Longest(keys); n != 0 {
		t.Fatalf("empty cache: longest %d", n)
	}
	for _, k := range keys[:2] {
		if err := c.Store(ctx, src, Entry{Key: k, Image: "dev", Step: "s"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.Longest(keys); n != 2 {
		t.Errorf("longest = %d, want 2", n)
	}
	if n := c.Longest([]string{keys[1]}); n != 1 {
		t.Errorf("longest of a cached key = %d", n)
	}
	if b, _ := os.ReadFile(filepath.Join(c.Path(keys[1]), WorkSeedFile)); string(b) != "work" {
		t.Errorf("cached work-seed = %q", b)
	}
	if err := c.Store(ctx, src, Entry{Key: "dddddddddddddddd4", Image: "other", Step: "s"}); err != nil {
		t.Fatal(err)
	}
	n, err := c.Prune("dev", keys[1:2])
	if err != nil || n != 1 {
		t.Errorf("prune = %d, %v; want the one entry of dev not kept", n, err)
	}
	if c.Has(keys[0]) || !c.Has(keys[1]) || !c.Has("dddddddddddddddd4") {
		t.Error("prune removed the wrong entries")
	}
	// A store whose source is missing leaves nothing behind.
	if err := c.Store(ctx, t.TempDir(), Entry{Key: "eeeeeeeeeeeeeeee5", Image: "dev", Step: "s"}); err == nil {
		t.Error("storing from an empty dir succeeded")
	}
	ents, _ := os.ReadDir(c.Dir)
	for _, e := range ents {
		if e.Name()[0] == '.' {
			t.Errorf("leftover %s after a failed store", e.Name())
		}
	}
}

// Entries of images that are gone go; those of live images, and a store
// in progress, stay.
func TestCachePruneOrphans(t *testing.T) {
	ctx := context.Background()
	c := Cache{Dir: filepath.Join(t.TempDir(), "cache")}
	src := t.TempDir()
	write(t, filepath.Join(src, RootfsFile), strings.Repeat("r", 64<<10))
	write(t, filepath.Join(src, WorkSeedFile), "work")
	for key, image := range map[string]string{
		"aaaaaaaaaaaaaaaa1": "dev", "bbbbbbbbbbbbbbbb2": "dev",
		"cccccccccccccccc3": "gone", "dddddddddddddddd4": "gone", "eeeeeeeeeeeeeeee5": "building",
	} {
		if err := c.Store(ctx, src, Entry{Key: key, Image: image, Step: "s"}); err != nil {
			t.Fatal(err)
		}
	}
	stale, fresh := filepath.Join(c.Dir, ".tmp-ffffffffffff-1"), filepath.Join(c.Dir, ".tmp-ffffffffffff-2")
	for _, d := range []string{stale, fresh} {
		os.Mkdir(d, 0o700)
		write(t, filepath.Join(d, RootfsFile), "partial")
	}
	then := time.Now().Add(-25 * time.Hour)
	os.Chtimes(stale, then, then)

	res, err := c.PruneOrphans(map[string]bool{"dev": true, "building": true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Entries != 2 || res.Temps != 1 || res.EntryBytes < 2*(64<<10) || res.TempBytes <= 0 {
		t.Errorf("result = %+v; want the 2 entries of image gone (64 KiB rootfs each) and the stale staging directory", res)
	}
	for key, want := range map[string]bool{"aaaaaaaaaaaaaaaa1": true, "bbbbbbbbbbbbbbbb2": true, "cccccccccccccccc3": false, "dddddddddddddddd4": false, "eeeeeeeeeeeeeeee5": true} {
		if got := c.Has(key); got != want {
			t.Errorf("after the prune, Has(%s) = %v, want %v", key, got, want)
		}
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale staging directory: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a store in progress lost its staging directory: %v", err)
	}
	// A cache never written to has nothing to prune.
	if res, err := (Cache{Dir: filepath.Join(t.TempDir(), "none")}).PruneOrphans(nil); err != nil || res != (PruneResult{}) {
		t.Errorf("prune of a missing cache = %+v, %v", res, err)
	}
}

func TestDevboxSteps(t *testing.T) {
	plain, docker := DevboxSteps(false), DevboxSteps(true)
	if len(docker) != len(plain)+1 || docker[len(docker)-1].Name != "devbox/docker" {
		t.Errorf("devbox steps: %d plain, %d with docker (last %q)", len(plain), len(docker), docker[len(docker)-1].Name)
	}
	for _, s := range append(docker, Step{Name: "cleanup", Script: CleanupScript()}) {
		cmd := exec.Command("sh", "-n")
		cmd.Stdin = bytes.NewReader(s.Script)
		if out, err := cmd.CombinedOutput(); len(s.Script) == 0 || err != nil {
			t.Errorf("step %s: sh -n: %v %s", s.Name, err, out)
		}
	}
	// Every VM of a built image must make its own SSH host keys: the
	// agent does so when its marker is gone.
	if !bytes.Contains(CleanupScript(), []byte("/var/lib/banger/ssh-host-keys-generated")) {
		t.Error("the cleanup script leaves the agent's host-key marker")
	}
	if len(CleanupScript()) == 0 {
		t.Error("no cleanup script")
	}
}

// TestDevboxToolsReportFailedDownloads runs the tools step with a curl
// that fails as a broken proxy does (exit 22 after an HTTP 500): every
// tool it could not get is reported, none is taken as installed.
func TestDevboxToolsReportFailedDownloads(t *testing.T) {
	if _, err := os.Stat("/etc/alpine-release"); err == nil {
		t.Skip("the glibc branch of the step is what runs on Debian hosts")
	}
	bin := t.TempDir()
	curl := "#!/bin/sh\necho \"curl: (22) The requested URL returned error: 500\" >&2\nexit 22\n"
	if err := os.WriteFile(filepath.Join(bin, "curl"), []byte(curl), 0o755); err != nil {
		t.Fatal(err)
	}
	var script []byte
	for _, s := range DevboxSteps(false) {
		if s.Name == "devbox/tools" {
			script = s.Script
		}
	}
	if script == nil {
		t.Fatal("no devbox tools step")
	}
	cmd := exec.Command("sh", "-e", writeStep(t, script))
	etc := t.TempDir()
	cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "HOME=" + t.TempDir(), "BANGER_BEST_EFFORT=1", "BANGER_ETC=" + etc,
		"BANGER_TOOLS_PREFIX=" + t.TempDir(), "BANGER_ROOT_HOME=" + t.TempDir(), "BANGER_TOOLS_TMP=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("best-effort tools step: %v\n%s", err, out)
	}
	// The same step writes the opencode service, which starts only once
	// opencode is there.
	unit, err := os.ReadFile(filepath.Join(etc, "systemd", "system", "opencode.service"))
	if err != nil || !bytes.Contains(unit, []byte("ConditionPathExists=/usr/local/bin/opencode")) {
		t.Errorf("the tools step wrote no opencode unit: %v\n%s", err, unit)
	}
	if target, err := os.Readlink(filepath.Join(etc, "systemd", "system", "multi-user.target.wants", "opencode.service")); err != nil || target != "/etc/systemd/system/opencode.service" {
		t.Errorf("the opencode unit is not enabled: %q, %v", target, err)
	}
	for _, want := range []string{"could not install opencode", "could not install mise", "could not install claude", "could not install node", "could not install npm", "could not install pi"} {
		if !bytes.Contains(out, []byte("warning: "+want)) {
			t.Errorf("output lacks the warning %q:\n%s", want, out)
		}
	}
}
