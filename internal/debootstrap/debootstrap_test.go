package debootstrap

import (
	"banger/internal/disk"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestArgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want []string
	}{
		{"packages", Options{Suite: "bookworm", Mirror: "http://mirror/debian", Packages: []string{"openssh-server", "git"}},
			[]string{"--variant=minbase", "--include=openssh-server,git", "bookworm", "/t", "http://mirror/debian"}},
		{"no packages", Options{Suite: "trixie", Mirror: "http://mirror/debian"},
			[]string{"--variant=minbase", "trixie", "/t", "http://mirror/debian"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := args(tc.opts, "/t")
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("args = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "git,rsync", "git rsync"} {
		if _, err := args(Options{Suite: "bookworm", Mirror: "m", Packages: []string{bad}}, "/t"); err == nil {
			t.Errorf("args accepted package %q", bad)
		}
	}
}

func TestDefaults(t *testing.T) {
	o := Options{}.withDefaults()
	if o.Suite != DefaultSuite || o.Mirror == "" {
		t.Errorf("defaults = %+v", o)
	}
	o = Options{Suite: "trixie", Mirror: "http://m/debian"}.withDefaults()
	if o.Suite != "trixie" || o.Mirror != "http://m/debian" {
		t.Errorf("defaults overrode %+v", o)
	}
}

func TestMirrorFrom(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	debian := write("debian.sources", `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
`)
	security := write("security.sources", "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n")
	other := write("other.sources", "Types: deb\nURIs: https://packages.example.com/apt \nSuites: stable\n")
	docker := write("a-docker.sources", "Types: deb\nURIs: https://download.docker.com/linux/debian\nSuites: bookworm\n")
	ubuntu := write("ubuntu.sources", "Types: deb\nURIs: http://archive.ubuntu.com/ubuntu/\nSuites: noble noble-updates\n")
	trailing := write("slash.sources", "URIs: https://mirror.example/debian/\n")
	list := write("sources.list", `# deb http://commented.example/debian bookworm main
deb [arch=amd64] http://list.example/debian bookworm main
deb http://list.example/debian-security bookworm-security main
`)
	securityList := write("security.list", "deb http://security.debian.org/debian-security bookworm-security main\n")
	missing := filepath.Join(dir, "missing")

	for _, tc := range []struct {
		name    string
		sources []string
		list    string
		want    string
	}{
		{"deb822", []string{security, debian}, list, "http://mirror.example/debian"},
		{"docker repository skipped", []string{docker, debian}, list, "http://mirror.example/debian"},
		{"ubuntu archive", []string{ubuntu}, list, "http://archive.ubuntu.com/ubuntu/"},
		{"deb822 with trailing slash", []string{trailing}, missing, "https://mirror.example/debian/"},
		{"non-Debian deb822 falls through to sources.list", []string{other}, list, "http://list.example/debian"},
		{"sources.list only", nil, list, "http://list.example/debian"},
		{"security only", []string{security}, securityList, DefaultMirror},
		{"nothing", nil, missing, DefaultMirror},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mirrorFrom(tc.sources, tc.list); got != tc.want {
				t.Errorf("mirrorFrom = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMountsUnder(t *testing.T) {
	info := []byte(`22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
90 22 0:5 / /srv/img/.debian.tmp-1/proc rw,relatime - proc proc rw
91 22 0:20 / /srv/img/.debian.tmp-1/sys rw,relatime - sysfs sysfs rw
92 91 0:21 / /srv/img/.debian.tmp-1/sys/fs/cgroup rw - cgroup2 cgroup2 rw
93 22 0:5 / /srv/img/.debian.tmp-10/proc rw - proc proc rw
94 22 0:5 / /srv/with\040space/proc rw - proc proc rw
`)
	got := mountsUnder(info, "/srv/img/.debian.tmp-1")
	want := []string{"/srv/img/.debian.tmp-1/sys/fs/cgroup", "/srv/img/.debian.tmp-1/proc", "/srv/img/.debian.tmp-1/sys"}
	if !slices.Equal(got, want) {
		t.Errorf("mountsUnder = %q, want %q (deepest first)", got, want)
	}
	if got := mountsUnder(info, "/srv/with space"); !slices.Equal(got, []string{"/srv/with space/proc"}) {
		t.Errorf("mountsUnder with an escaped space = %q", got)
	}
}

func TestBuildRefusesExisting(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("Build stops at the root check first")
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		t.Skip("no debootstrap")
	}
	dst := t.TempDir()
	if err := os.WriteFile(filepath.Join(dst, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Build(context.Background(), dst, Options{}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("Build over a tree = %v, want an 'already exists' error", err)
	}
}

func TestBuildNeedsRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root")
	}
	if err := Build(context.Background(), t.TempDir(), Options{}); !errors.Is(err, ErrNeedsRoot) {
		t.Fatalf("Build as a user = %v, want ErrNeedsRoot", err)
	}
}

func TestStrip(t *testing.T) {
	root := t.TempDir()
	keep := []string{"etc/ssh/sshd_config", "var/cache/apt/archives/partial/x", "var/cache/apt/archives/lock"}
	drop := []string{"etc/ssh/ssh_host_ed25519_key", "etc/ssh/ssh_host_ed25519_key.pub", "var/cache/apt/archives/git_1_amd64.deb"}
	for _, p := range append(keep, drop...) {
		p = filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := strip(root); err != nil {
		t.Fatal(err)
	}
	for _, p := range keep {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("strip removed %s", p)
		}
	}
	for _, p := range drop {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			t.Errorf("strip kept %s", p)
		}
	}
}

// slow skips t unless BANGER_SLOW=1: the test downloads from the host's
// apt mirror and needs root.
func slow(t *testing.T) {
	t.Helper()
	if os.Getenv("BANGER_SLOW") != "1" {
		t.Skip("debootstraps from the apt mirror; set BANGER_SLOW=1 to run")
	}
	if os.Geteuid() != 0 {
		t.Skip("debootstrap needs root")
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		t.Skip("no debootstrap")
	}
}

func TestBuild(t *testing.T) {
	slow(t)
	dst := filepath.Join(t.TempDir(), "images", "debian")
	var lines []string
	start := time.Now()
	err := Build(t.Context(), dst, Options{Packages: []string{"openssh-server"}, Progress: func(l string) { lines = append(lines, l) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("debootstrap took %s, %d lines of progress", time.Since(start).Round(time.Second), len(lines))
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "I: Retrieving") }) {
		t.Errorf("no 'I: Retrieving' progress line in %q", lines)
	}
	for _, p := range []string{"usr/sbin/sshd", "etc/debian_version", "bin/sh"} {
		if _, err := os.Stat(filepath.Join(dst, p)); err != nil {
			t.Errorf("the tree lacks %s: %v", p, err)
		}
	}
	if v, _ := os.ReadFile(filepath.Join(dst, "etc/debian_version")); !strings.HasPrefix(string(v), "12.") {
		t.Errorf("etc/debian_version = %q, want bookworm's 12.x", v)
	}
	for _, pattern := range []string{"etc/ssh/ssh_host_*", "var/cache/apt/archives/*.deb"} {
		if m, _ := filepath.Glob(filepath.Join(dst, pattern)); len(m) > 0 {
			t.Errorf("the tree keeps %v", m)
		}
	}
	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("%s mode = %v, %v; want 0755", dst, fi, err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(dst)); len(ents) != 1 {
		t.Errorf("%s holds %v, want only the tree (no temp left)", filepath.Dir(dst), ents)
	}
	if m := mounts(t, filepath.Dir(dst)); len(m) > 0 {
		t.Errorf("mounts left under the tree: %q", m)
	}

	start = time.Now()
	img := filepath.Join(t.TempDir(), "rootfs.ext4")
	if err := Ext4FromDir(t.Context(), dst, img, 0); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ext4 image of %d MiB in %s", fi.Size()>>20, time.Since(start).Round(time.Millisecond))
	used, inodes, _ := disk.Du(dst, false)
	if fi.Size() != imageSize(used, inodes) {
		t.Errorf("image is %d bytes, want %d", fi.Size(), imageSize(used, inodes))
	}
	if _, err := exec.LookPath("debugfs"); err == nil {
		out, err := exec.Command("debugfs", "-R", "stat /usr/sbin/sshd", img).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "User:     0") {
			t.Errorf("debugfs stat /usr/sbin/sshd: %v\n%s", err, out)
		}
	}
}

// TestBuildCancelled cancels once debootstrap runs in the chroot (with
// /proc and /sys mounted in the target) and expects no trace of it.
func TestBuildCancelled(t *testing.T) {
	slow(t)
	parent := t.TempDir()
	dst := filepath.Join(parent, "debian")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var mounted []string
	err := Build(ctx, dst, Options{Progress: func(l string) {
		if strings.HasPrefix(l, "I: Installing core packages") && ctx.Err() == nil {
			mounted = mounts(t, parent)
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Build = %v, want context.Canceled", err)
	}
	t.Logf("cancelled with %q mounted", mounted)
	if ents, _ := os.ReadDir(parent); len(ents) != 0 {
		t.Errorf("cancelled Build left %v in %s", ents, parent)
	}
	if m := mounts(t, parent); len(m) > 0 {
		t.Errorf("cancelled Build left mounts %q", m)
	}
}

func mounts(t *testing.T, dir string) []string {
	t.Helper()
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	return mountsUnder(info, dir)
}
