package imagepull

import (
	"io/fs"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// superblock reads a few dumpe2fs -h fields.
func superblock(t *testing.T, img string) map[string]string {
	t.Helper()
	out, err := exec.Command("dumpe2fs", "-h", img).Output()
	if err != nil {
		t.Fatalf("dumpe2fs -h %s: %v", img, err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("parsing %q: %v", s, err)
	}
	return n
}

// The built filesystem is a normal writable ext4: journal, no read-only
// flag, the requested size, and room for new files even when the image
// is a few large files.
func TestFilesystemShape(t *testing.T) {
	requireE2fs(t)
	big := strings.Repeat("0123456789abcdef", 2<<20) // 32 MiB in one file
	tests := []struct {
		name     string
		size     int64
		wantSize int64
	}{
		{"content-aware", 0, 1<<30 + 64<<20}, // 32 MiB of content, 1 GiB headroom, a journal, rounded
		{"requested", 768 << 20, 768 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := buildLayers(t, BuildOptions{Size: tt.size}, tarOf(t, file("big", big), dir("etc"), file("etc/hostname", "box")))
			if err != nil {
				t.Fatal(err)
			}
			fsckClean(t, res.Path)
			sb := superblock(t, res.Path)
			feats := sb["Filesystem features"]
			for _, f := range []string{"has_journal", "extent", "dir_index", "ext_attr"} {
				if !strings.Contains(feats, f) {
					t.Errorf("features %q lack %s", feats, f)
				}
			}
			if strings.Contains(feats, "read-only") {
				t.Errorf("features %q still read-only", feats)
			}
			blocks := atoi(t, sb["Block count"])
			if got := blocks * blockSize; got != res.Size || (tt.wantSize != 0 && got < tt.wantSize-sizeRound || got > tt.wantSize+sizeRound) {
				t.Errorf("filesystem is %d bytes (result says %d), want about %d", got, res.Size, tt.wantSize)
			}
			// One inode per 32 KiB at least, however sparse the image.
			if ipg := atoi(t, sb["Inodes per group"]); ipg < minInodesPerGroup {
				t.Errorf("inodes per group = %d, want >= %d", ipg, minInodesPerGroup)
			}
			if free, want := atoi(t, sb["Free inodes"]), blocks*blockSize/(32<<10)*9/10; free < want {
				t.Errorf("free inodes = %d, want >= %d", free, want)
			}
			if got := ls(t, res.Path, "/"); !cmp.Equal(sorted(got), []string{"big", "etc", "lost+found"}) {
				t.Errorf("root = %v", got)
			}
			if res.Content != int64(len(big))+3 {
				t.Errorf("content = %d", res.Content)
			}
		})
	}
}

// Extra files (the agent hook) land in the same pass: parents made,
// symlinked parents followed inside the image, image files replaced.
func TestExtraFiles(t *testing.T) {
	requireE2fs(t)
	layer := tarOf(t, dir("usr"), dir("usr/lib"), symlink("lib", "usr/lib"), dir("etc"), file("etc/motd", "image motd"), dir("srv"))
	extra := []ExtraFile{
		{Path: "/usr/local/bin/banger-vsock-agent", Mode: 0o755, Size: 5, Content: strings.NewReader("agent")},
		{Path: "/lib/systemd/system/banger-agent.service", Mode: 0o644, Size: 6, Content: strings.NewReader("[Unit]")},
		{Path: "/etc/systemd/system/multi-user.target.wants/banger-agent.service", Mode: fs.ModeSymlink | 0o777, Linkname: "/lib/systemd/system/banger-agent.service"},
		{Path: "/etc/motd", Mode: 0o600, UID: 7, GID: 8, Size: 4, Content: strings.NewReader("ours")},
		{Path: "/var/lib/banger", Mode: fs.ModeDir | 0o700},
		{Path: "/usr/bin/sudoish", Mode: fs.ModeSetuid | 0o755, Size: 0},
	}
	res, err := buildLayers(t, BuildOptions{Extra: extra}, layer)
	if err != nil {
		t.Fatal(err)
	}
	fsckClean(t, res.Path)
	if got := cat(t, res.Path, "/usr/local/bin/banger-vsock-agent"); got != "agent" {
		t.Errorf("agent = %q", got)
	}
	if got := cat(t, res.Path, "/usr/lib/systemd/system/banger-agent.service"); got != "[Unit]" {
		t.Errorf("unit under the lib symlink = %q", got)
	}
	for path, want := range map[string]inodeInfo{
		"/usr/local/bin/banger-vsock-agent": {typ: "regular", mode: "0755", uid: "0", gid: "0"},
		"/usr/local":                        {typ: "directory", mode: "0755", uid: "0", gid: "0"},
		"/etc/motd":                         {typ: "regular", mode: "0600", uid: "7", gid: "8"},
		"/var/lib/banger":                   {typ: "directory", mode: "0700", uid: "0", gid: "0"},
		"/usr/bin/sudoish":                  {typ: "regular", mode: "04755", uid: "0", gid: "0"},
		"/etc/systemd/system/multi-user.target.wants/banger-agent.service": {typ: "symlink", mode: "0777", uid: "0", gid: "0"},
	} {
		got, ok := stat(t, res.Path, path)
		if !ok || got.typ != want.typ || got.mode != want.mode || got.uid != want.uid || got.gid != want.gid {
			t.Errorf("%s = %+v, want %+v", path, got, want)
		}
	}
	if got := cat(t, res.Path, "/etc/motd"); got != "ours" {
		t.Errorf("/etc/motd = %q", got)
	}

	for _, bad := range []ExtraFile{
		{Path: "relative", Mode: 0o644},
		{Path: "/a/../b", Mode: 0o644},
		{Path: "/srv", Mode: 0o644},
		{Path: "/x", Mode: 0o644, Size: 3},
		{Path: "/dev/x", Mode: fs.ModeDevice | 0o644},
	} {
		if _, err := buildLayers(t, BuildOptions{Extra: []ExtraFile{bad}}, layer); err == nil {
			t.Errorf("extra %+v was accepted", bad)
		}
	}
}

// An image with no layers, or only empty ones, is still a filesystem.
func TestEmptyImage(t *testing.T) {
	requireE2fs(t)
	res, err := buildLayers(t, BuildOptions{}, tarOf(t))
	if err != nil {
		t.Fatal(err)
	}
	fsckClean(t, res.Path)
	if got := ls(t, res.Path, "/"); len(got) != 1 || got[0] != "lost+found" {
		t.Errorf("root = %v", got)
	}
}

func TestConfineLink(t *testing.T) {
	for _, tt := range []struct{ dir, target, want string }{
		{"", "usr/lib", "usr/lib"},
		{"", "../../etc", "etc"},
		{"a/b", "../../../../x", "../../x"},
		{"a/b", "../c", "../c"},
		{"a", "..", ".."},
		{"a", "../..", ".."},
		{"", "..", "."},
		{"a", "/abs/../../x", "/abs/../../x"},
	} {
		if got := confineLink(tt.dir, tt.target); got != tt.want {
			t.Errorf("confineLink(%q, %q) = %q, want %q", tt.dir, tt.target, got, tt.want)
		}
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
