package imagepull

import (
	"archive/tar"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A multi-layer image pulled from a registry keeps what the layers say,
// after whiteouts and opaque directories, down to owners, modes, xattrs,
// links and device nodes.
func TestPullMultiLayer(t *testing.T) {
	requireE2fs(t)
	reg := newRegistry(t, nil)
	capability := "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	base := layerOf(t,
		ent{name: "./", typ: tar.TypeDir, mode: 0o711},
		dir("bin"), dir("etc"), dir("usr"), dir("usr/lib"), dir("var"), dir("var/cache"), dir("tmp"),
		ent{name: "tmp", typ: tar.TypeDir, mode: 0o1777},
		ent{name: "bin/sh", body: "#!shell", mode: 0o755},
		ent{name: "bin/su", body: "su binary", mode: 0o4755},
		ent{name: "bin/ping", body: "ping binary", mode: 0o755, xattrs: map[string]string{"security.capability": capability, "user.note": "hi"}},
		ent{name: "etc/shadow", body: "root:*:", mode: 0o640, gid: 42},
		ent{name: "home", typ: tar.TypeDir, mode: 0o755},
		ent{name: "home/ann", typ: tar.TypeDir, mode: 0o700, uid: 1000, gid: 1000},
		ent{name: "home/ann/notes", body: "mine", mode: 0o600, uid: 1000, gid: 1000},
		file("usr/lib/libc.so", "libc v1"),
		hardlink("usr/lib/libc.so.6", "usr/lib/libc.so"),
		symlink("lib", "usr/lib"),
		file("var/cache/a", "stale"), file("var/cache/b", "stale"),
		dir("var/cache/sub"), file("var/cache/sub/c", "stale"),
		file("etc/gone", "to be whited out"),
		dir("opt"), dir("opt/tool"), file("opt/tool/bin", "old tool"),
		dir("dev"),
		ent{name: "dev/null", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 3},
		ent{name: "dev/sda", typ: tar.TypeBlock, mode: 0o660, major: 8, minor: 0, gid: 6},
		ent{name: "dev/initctl", typ: tar.TypeFifo, mode: 0o600},
	)
	upper := layerOf(t,
		file("etc/.wh.gone", ""),
		dir("var/cache"), file("var/cache/.wh..wh..opq", ""), file("var/cache/fresh", "new"),
		file("opt/.wh.tool", ""),
		file("usr/lib/libc.so", "libc v2"), // breaks the old hardlink, as a real extraction does
		file("lib/extra.so", "through the lib symlink"),
		ent{name: "bin/su", body: "su binary", mode: 0o4750, gid: 10},
	)
	ref := reg.Push(t, "test/multi:v1", imageOf(t, base, upper))

	img, res, err := pullInto(t, newPuller(t), ref, BuildOptions{})
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	rootfs := res.Path
	fsckClean(t, rootfs)
	if img.Info.Config.WorkingDir != "/srv" || img.Info.Config.User != "1000:1000" || img.Info.Config.Entrypoint[0] != "/bin/sh" {
		t.Errorf("config = %+v", img.Info.Config)
	}

	for _, tt := range []struct {
		path string
		want inodeInfo
	}{
		{"/", inodeInfo{typ: "directory", mode: "0711", uid: "0", gid: "0"}},
		{"/tmp", inodeInfo{typ: "directory", mode: "01777", uid: "0", gid: "0"}},
		{"/bin/su", inodeInfo{typ: "regular", mode: "04750", uid: "0", gid: "10"}},
		{"/etc/shadow", inodeInfo{typ: "regular", mode: "0640", uid: "0", gid: "42"}},
		{"/home/ann", inodeInfo{typ: "directory", mode: "0700", uid: "1000", gid: "1000"}},
		{"/home/ann/notes", inodeInfo{typ: "regular", mode: "0600", uid: "1000", gid: "1000"}},
		{"/dev/null", inodeInfo{typ: "character special", mode: "0666", uid: "0", gid: "0", devMajor: "01", devMinor: "03"}},
		{"/dev/sda", inodeInfo{typ: "block special", mode: "0660", uid: "0", gid: "6", devMajor: "08", devMinor: "00"}},
		{"/dev/initctl", inodeInfo{typ: "FIFO", mode: "0600", uid: "0", gid: "0"}},
		{"/lib", inodeInfo{typ: "symlink", mode: "0777", uid: "0", gid: "0", fastLinkTo: "usr/lib"}},
	} {
		got, ok := stat(t, rootfs, tt.path)
		if !ok {
			t.Errorf("%s is missing", tt.path)
			continue
		}
		got.inode, got.links, got.size = "", "", ""
		if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(inodeInfo{})); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.path, diff)
		}
	}

	// xattrs, security.capability included.
	ea := debugfs(t, rootfs, "ea_list /bin/ping")
	if !strings.Contains(ea, "security.capability") || !strings.Contains(ea, `user.note (2) = "hi"`) {
		t.Errorf("ea_list /bin/ping:\n%s", ea)
	}
	if got := debugfs(t, rootfs, "ea_get -x /bin/ping security.capability"); !strings.Contains(got, "01 00 00 02 00 20") {
		t.Errorf("security.capability = %q", got)
	}

	// Whiteouts and opaque directories.
	for _, gone := range []string{"/etc/gone", "/var/cache/a", "/var/cache/b", "/var/cache/sub", "/opt/tool"} {
		if _, ok := stat(t, rootfs, gone); ok {
			t.Errorf("%s survived its whiteout", gone)
		}
	}
	if got := ls(t, rootfs, "/var/cache"); !cmp.Equal(got, []string{"fresh"}) {
		t.Errorf("/var/cache = %v, want [fresh]", got)
	}
	if got := ls(t, rootfs, "/opt"); len(got) != 0 {
		t.Errorf("/opt = %v, want empty", got)
	}

	// Replacing a hardlinked file breaks the link; a write through a
	// symlinked directory lands in its target.
	if got := cat(t, rootfs, "/usr/lib/libc.so"); got != "libc v2" {
		t.Errorf("libc.so = %q", got)
	}
	if got := cat(t, rootfs, "/usr/lib/libc.so.6"); got != "libc v1" {
		t.Errorf("libc.so.6 = %q, want the old content", got)
	}
	if got := cat(t, rootfs, "/usr/lib/extra.so"); got != "through the lib symlink" {
		t.Errorf("usr/lib/extra.so = %q", got)
	}
	// The image's own directories are untouched by the placeholders.
	if got := ls(t, rootfs, "/"); strings.Contains(strings.Join(got, " "), "reserve") {
		t.Errorf("root lists %v", got)
	}
}
