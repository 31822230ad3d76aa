package guestagent_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"banger/api/errdefs"
	"banger/internal/agentproto"
)

// seededReader is a fast deterministic stream of random bytes.
func seededReader(seed uint64) io.Reader {
	var key [32]byte
	key[0] = byte(seed)
	return rand.NewChaCha8(key)
}

func TestCopyLargeFileInAndOutWithChecksum(t *testing.T) {
	size := int64(200 << 20)
	if testing.Short() {
		size = 8 << 20
	}
	c := newEnv(t, guestConfig()).connect()
	ctx := testCtx(t, 5*time.Minute)
	dst := filepath.Join(t.TempDir(), "target")

	// Stream the archive so 200 MiB never sits in memory.
	wantSum := sha256.New()
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := tw.WriteHeader(&tar.Header{Name: "big/blob.bin", Mode: 0o640, Size: size, Typeflag: tar.TypeReg})
		if err == nil {
			_, err = io.CopyN(io.MultiWriter(tw, wantSum), seededReader(1), size)
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	res, err := c.CopyIn(ctx, dst, pr)
	if err != nil {
		t.Fatal(err)
	}
	if res.Bytes != size || res.Entries != 1 {
		t.Errorf("copy in result = %+v, want 1 entry of %d bytes", res, size)
	}
	if got := fileSum(t, filepath.Join(dst, "big", "blob.bin")); !bytes.Equal(got, wantSum.Sum(nil)) {
		t.Fatalf("sha256 in guest = %x, want %x", got, wantSum.Sum(nil))
	}

	pr, pw = io.Pipe()
	gotSum := sha256.New()
	done := make(chan error, 1)
	go func() {
		tr := tar.NewReader(pr)
		var err error
		for {
			var hdr *tar.Header
			if hdr, err = tr.Next(); err != nil {
				break
			}
			if hdr.Name == "big/blob.bin" {
				_, err = io.Copy(gotSum, tr)
			}
		}
		if err == io.EOF {
			err = nil
		}
		io.Copy(io.Discard, pr)
		done <- err
	}()
	res, err = c.CopyOut(ctx, filepath.Join(dst, "big"), pw)
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gotSum.Sum(nil), wantSum.Sum(nil)) {
		t.Fatalf("sha256 copied out = %x, want %x", gotSum.Sum(nil), wantSum.Sum(nil))
	}
	if res.Bytes != size || res.Entries != 2 {
		t.Errorf("copy out result = %+v, want 2 entries (dir, file) and %d bytes", res, size)
	}
}

func fileSum(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return h.Sum(nil)
}

type entry struct {
	hdr  tar.Header
	body string
}

func tarOf(t *testing.T, entries ...entry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		h.Size = int64(len(e.body))
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	tw.Close()
	return &buf
}

func TestCopyInKeepsModesOwnersAndLinks(t *testing.T) {
	c := newEnv(t, guestConfig()).connect()
	dst := filepath.Join(t.TempDir(), "t")
	archive := tarOf(t,
		entry{hdr: tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o750}},
		entry{hdr: tar.Header{Name: "d/script", Mode: 0o755, Uid: 1234, Gid: 4321}, body: "#!/bin/sh\n"},
		entry{hdr: tar.Header{Name: "d/secret", Mode: 0o600}, body: "s3cret"},
		entry{hdr: tar.Header{Name: "d/link", Typeflag: tar.TypeSymlink, Linkname: "script"}},
		entry{hdr: tar.Header{Name: "d/hard", Typeflag: tar.TypeLink, Linkname: "d/secret"}},
	)
	if _, err := c.CopyIn(testCtx(t, 10*time.Second), dst, archive); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{"d": os.ModeDir | 0o750, "d/script": 0o755, "d/secret": 0o600, "d/link": os.ModeSymlink | 0o777} {
		fi, err := os.Lstat(filepath.Join(dst, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode(); got != want {
			t.Errorf("mode of %s = %v, want %v", name, got, want)
		}
	}
	if target, _ := os.Readlink(filepath.Join(dst, "d/link")); target != "script" {
		t.Errorf("symlink target = %q, want script", target)
	}
	a, _ := os.Stat(filepath.Join(dst, "d/secret"))
	b, _ := os.Stat(filepath.Join(dst, "d/hard"))
	if a == nil || b == nil || !os.SameFile(a, b) {
		t.Errorf("d/hard is not a hard link of d/secret")
	}
	if isRoot() {
		fi, _ := os.Stat(filepath.Join(dst, "d/script"))
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 1234 || st.Gid != 4321 {
			t.Errorf("owner of d/script = %d:%d, want 1234:4321", st.Uid, st.Gid)
		}
	}
}

func TestCopyInRefusesPathEscapes(t *testing.T) {
	c := newEnv(t, guestConfig()).connect()
	tests := []struct {
		name  string
		entry entry
	}{
		{"dot-dot", entry{hdr: tar.Header{Name: "../evil"}, body: "x"}},
		{"nested dot-dot", entry{hdr: tar.Header{Name: "a/../../evil"}, body: "x"}},
		{"absolute", entry{hdr: tar.Header{Name: "/evil"}, body: "x"}},
		{"absolute symlink", entry{hdr: tar.Header{Name: "evil", Typeflag: tar.TypeSymlink, Linkname: "/etc"}}},
		{"escaping symlink", entry{hdr: tar.Header{Name: "a/evil", Typeflag: tar.TypeSymlink, Linkname: "../../etc"}}},
		{"escaping hard link", entry{hdr: tar.Header{Name: "evil", Typeflag: tar.TypeLink, Linkname: "../outside"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dst := filepath.Join(parent, "t")
			_, err := c.CopyIn(testCtx(t, 10*time.Second), dst, tarOf(t, tt.entry))
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("err = %v, want invalid", err)
			}
			if _, err := os.Lstat(filepath.Join(parent, "evil")); err == nil {
				t.Fatal("an entry landed outside the target")
			}
		})
	}

	t.Run("through an existing symlink", func(t *testing.T) {
		parent := t.TempDir()
		dst := filepath.Join(parent, "t")
		os.MkdirAll(dst, 0o755)
		os.Symlink(parent, filepath.Join(dst, "out"))
		_, err := c.CopyIn(testCtx(t, 10*time.Second), dst, tarOf(t, entry{hdr: tar.Header{Name: "out/evil"}, body: "x"}))
		if err == nil || !strings.Contains(err.Error(), "escapes") {
			t.Fatalf("err = %v, want a path-escape refusal", err)
		}
		if _, err := os.Lstat(filepath.Join(parent, "evil")); err == nil {
			t.Fatal("a write followed the symlink out of the target")
		}
	})

	// The connection survives refused copies.
	if _, err := c.Info(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
}

func TestCopyOutMissingIsNotFound(t *testing.T) {
	c := newEnv(t, guestConfig()).connect()
	_, err := c.CopyOut(testCtx(t, 5*time.Second), "/no/such/path", io.Discard)
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("err = %v, want not found", err)
	}
}

func TestPutFilesConfinedToHome(t *testing.T) {
	e := newEnv(t, guestConfig())
	c := e.connect()
	ctx := testCtx(t, 10*time.Second)
	err := c.PutFiles(ctx, []agentproto.File{
		{Path: ".config/opencode/auth.json", Content: []byte(`{"k":1}`)},
		{Path: filepath.Join(e.paths.Home, ".claude/.credentials.json"), Mode: 0o640, Content: []byte("c")},
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{".config/opencode/auth.json": 0o600, ".claude/.credentials.json": 0o640} {
		fi, err := os.Stat(filepath.Join(e.paths.Home, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("mode of %s = %v, want %v", name, fi.Mode().Perm(), want)
		}
	}
	for _, bad := range []string{"../escape", "/etc/passwd", filepath.Join(e.paths.Home, "..", "x"), ""} {
		if err := c.PutFiles(ctx, []agentproto.File{{Path: bad, Content: []byte("x")}}); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("put %q: err = %v, want invalid", bad, err)
		}
	}
}

func TestAuthorizeKeyAppendsOnce(t *testing.T) {
	e := newEnv(t, guestConfig())
	c := e.connect()
	ctx := testCtx(t, 10*time.Second)
	_, signer := writeClientKey(t, t.TempDir())
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) + " host@banger"
	for range 2 {
		if err := c.AuthorizeKey(ctx, line); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(e.paths.Home, ".ssh", "authorized_keys")
	got, _ := os.ReadFile(path)
	if string(got) != line+"\n" {
		t.Errorf("authorized_keys = %q, want the key once", got)
	}
	if fi, _ := os.Stat(path); fi == nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("authorized_keys mode = %v, want 0600", fi.Mode())
	}
	if err := c.AuthorizeKey(ctx, "ssh-ed25519 not-base64!"); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("bad key: err = %v, want invalid", err)
	}
}
