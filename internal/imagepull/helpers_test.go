package imagepull

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"banger/internal/testutil/testregistry"
)

// ent describes one tar entry of a test layer.
type ent struct {
	name   string
	typ    byte // tar.TypeReg when 0
	mode   int64
	uid    int
	gid    int
	body   string
	link   string
	xattrs map[string]string
	major  int64
	minor  int64
}

func file(name, body string) ent { return ent{name: name, body: body, mode: 0o644} }
func dir(name string) ent        { return ent{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) ent {
	return ent{name: name, typ: tar.TypeSymlink, link: target, mode: 0o777}
}
func hardlink(name, target string) ent { return ent{name: name, typ: tar.TypeLink, link: target} }

// tarOf writes the entries as an uncompressed tar.
func tarOf(t testing.TB, es ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid, Linkname: e.link,
			Devmajor: e.major, Devminor: e.minor, ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		for k, v := range e.xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("writing tar header %s: %v", e.name, err)
		}
		if h.Typeflag == tar.TypeReg {
			io.WriteString(tw, e.body)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// layerOf makes a gzip layer of the entries.
func layerOf(t testing.TB, es ...ent) v1.Layer {
	t.Helper()
	data := tarOf(t, es...)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// imageOf stacks layers (oldest first) on an empty linux image of the
// host's arch.
func imageOf(t testing.TB, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", hostPlatform().Architecture
	cf.Config.Entrypoint = []string{"/bin/sh"}
	cf.Config.Env = []string{"PATH=/usr/bin:/bin"}
	cf.Config.WorkingDir = "/srv"
	cf.Config.User = "1000:1000"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// newRegistry starts a loopback registry for a test.
func newRegistry(t testing.TB, wrap func(http.Handler) http.Handler) *testregistry.Registry {
	return testregistry.New(t, wrap)
}

// pullInto runs Resolve, Fetch and Build into a fresh directory and
// returns the rootfs path.
func pullInto(t testing.TB, p *Puller, ref string, o BuildOptions) (*Image, Result, error) {
	t.Helper()
	ctx := context.Background()
	r, err := p.Resolve(ctx, ref, ResolveOptions{})
	if err != nil {
		return nil, Result{}, err
	}
	img, err := p.Fetch(ctx, r, nil)
	if err != nil {
		return nil, Result{}, err
	}
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	res, err := Build(ctx, img.Layers, o)
	if err == nil {
		fsckClean(t, res.Path) // every image a test produces
	}
	return img, res, err
}

func newPuller(t testing.TB) *Puller {
	t.Helper()
	p, err := New(Options{CacheDir: filepath.Join(t.TempDir(), "oci")})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// buildLayers builds raw layer tars (no registry) into a rootfs.
func buildLayers(t testing.TB, o BuildOptions, layers ...[]byte) (Result, error) {
	t.Helper()
	dir := t.TempDir()
	var ls []Layer
	for i, data := range layers {
		p := filepath.Join(dir, fmt.Sprintf("layer%d.tar", i))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		ls = append(ls, Layer{Digest: fmt.Sprintf("sha256:%064d", i), Size: int64(len(data)), Path: p})
	}
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	res, err := Build(context.Background(), ls, o)
	if err == nil {
		fsckClean(t, res.Path) // every image a test produces
	}
	return res, err
}

func requireE2fs(t testing.TB) {
	t.Helper()
	if err := checkTools(); err != nil {
		t.Skip(err)
	}
}

// debugfs runs one read-only debugfs request on img.
func debugfs(t testing.TB, img, req string) string {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", req, img).Output()
	if err != nil {
		t.Fatalf("debugfs -R %q: %v", req, err)
	}
	return string(out)
}

// fsckClean fails the test unless e2fsck -fn finds img clean.
func fsckClean(t testing.TB, img string) {
	t.Helper()
	out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput()
	if err != nil {
		t.Fatalf("e2fsck -fn %s: %v\n%s", img, err, out)
	}
}

// inodeInfo is what debugfs stat says about a path.
type inodeInfo struct {
	typ        string
	mode       string
	uid, gid   string
	links      string
	inode      string
	size       string
	devMajor   string
	devMinor   string
	fastLinkTo string
}

var (
	reStatHead = regexp.MustCompile(`Inode: (\d+)\s+Type: (\S+(?: special)?)\s+Mode:\s+(\d+)`)
	reStatUser = regexp.MustCompile(`User:\s+(\d+)\s+Group:\s+(\d+)(?:\s+Project:\s+\d+)?\s+Size: (\d+)`)
	reStatLink = regexp.MustCompile(`Links: (\d+)`)
	reStatDev  = regexp.MustCompile(`Device major/minor number: (\d+):(\d+)`)
	reFastLink = regexp.MustCompile(`Fast link dest: "(.*)"`)
)

// stat returns the inode at p in img, or false when it does not exist.
func stat(t testing.TB, img, p string) (inodeInfo, bool) {
	t.Helper()
	out := debugfs(t, img, "stat "+p)
	m := reStatHead.FindStringSubmatch(out)
	if m == nil {
		return inodeInfo{}, false
	}
	in := inodeInfo{inode: m[1], typ: m[2], mode: m[3]}
	if u := reStatUser.FindStringSubmatch(out); u != nil {
		in.uid, in.gid, in.size = u[1], u[2], u[3]
	}
	if l := reStatLink.FindStringSubmatch(out); l != nil {
		in.links = l[1]
	}
	if d := reStatDev.FindStringSubmatch(out); d != nil {
		in.devMajor, in.devMinor = d[1], d[2]
	}
	if f := reFastLink.FindStringSubmatch(out); f != nil {
		in.fastLinkTo = f[1]
	}
	return in, true
}

// cat returns a file's content from img.
func cat(t testing.TB, img, p string) string {
	t.Helper()
	return debugfs(t, img, "cat "+p)
}

// ls lists a directory's names (without . and ..), sorted by debugfs.
func ls(t testing.TB, img, p string) []string {
	t.Helper()
	var names []string
	for _, f := range strings.Fields(debugfs(t, img, "ls -p "+p)) {
		parts := strings.Split(f, "/")
		if len(parts) >= 6 && parts[1] != "0" && parts[5] != "." && parts[5] != ".." && parts[5] != "" {
			names = append(names, parts[5])
		}
	}
	return names
}

func nopLogger() *log.Logger { return log.New(io.Discard, "", 0) }

func nopCloser(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }
