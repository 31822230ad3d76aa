package kernel

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/progress"
)

// errRestart asks fetch to drop what it has and download from byte zero.
var errRestart = errors.New("restart download")

// artifact is one catalog file and the name it gets on disk.
type artifact struct {
	name string // "vmlinux", "initrd", "modules.tar"; also the progress item
	file api.CatalogFile
}

// downloader fetches the artifacts of one kernel into its partial dir.
type downloader struct {
	client   *http.Client
	progress progress.Func
	kernel   string // kernel name, for messages
	dir      string // <root>/.partial/<kernel>
}

func (d *downloader) path(a artifact) string     { return filepath.Join(d.dir, a.name) }
func (d *downloader) partPath(a artifact) string { return d.path(a) + ".partial" }
func (d *downloader) etagPath(a artifact) string { return d.path(a) + ".etag" }

// fetch leaves a verified copy of a at d.path(a). A file verified by an
// earlier, interrupted pull is hashed again rather than trusted.
func (d *downloader) fetch(ctx context.Context, a artifact) error {
	if err := verifyFile(d.path(a), a.file); err == nil {
		return nil
	}
	os.Remove(d.path(a))
	err := d.attempt(ctx, a, true)
	if errors.Is(err, errRestart) {
		// What we had on disk was not a prefix of the file (server-side
		// change, crash garbage, bad range answer): start over, once.
		err = d.attempt(ctx, a, false)
	}
	return err
}

// attempt downloads a into its .partial file, continuing from the bytes
// already there when resume is set.
func (d *downloader) attempt(ctx context.Context, a artifact, resume bool) error {
	var have int64
	if resume {
		if fi, err := os.Stat(d.partPath(a)); err == nil {
			have = fi.Size()
		}
	} else {
		d.discard(a)
	}
	switch {
	case have > a.file.Size:
		return errRestart
	case have == a.file.Size:
		// Complete but never verified: the process died before the rename.
		h := sha256.New()
		if err := hashPrefix(h, d.partPath(a), have); err != nil {
			return err
		}
		return d.finish(a, h, true)
	}
	body, start, err := d.open(ctx, a, have)
	if err != nil {
		return err
	}
	defer body.Close()
	return d.receive(ctx, a, body, start)
}

// receive appends body to the .partial file from offset start, which is
// either 0 or the current length of the file.
func (d *downloader) receive(ctx context.Context, a artifact, body io.Reader, start int64) error {
	h := sha256.New()
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if start > 0 {
		// The hash must cover the whole file, not just the new bytes.
		if err := hashPrefix(h, d.partPath(a), start); err != nil {
			return err
		}
		flags = os.O_WRONLY | os.O_APPEND
	}
	out, err := os.OpenFile(d.partPath(a), flags, 0o644)
	if err != nil {
		return fmt.Errorf("opening %s: %w", d.partPath(a), err)
	}
	defer out.Close()
	c := progress.NewCounter(d.progress, "download", a.name, a.file.Size)
	c.Set(start)
	// One byte past the expected size is enough to tell "too big".
	n, err := io.Copy(c.Writer(io.MultiWriter(out, h)), io.LimitReader(ctxReader{ctx, body}, a.file.Size-start+1))
	got := start + n
	switch {
	case got > a.file.Size:
		d.discardAll()
		return errdefs.Invalid("%s is larger than the catalog's %d bytes; nothing was kept — the catalog entry or its mirror is wrong", a.name, a.file.Size)
	case got < a.file.Size && ctx.Err() != nil:
		return fmt.Errorf("download of %s interrupted at %d of %d bytes; run 'banger kernel pull %s' again to resume: %w", a.name, got, a.file.Size, d.kernel, ctx.Err())
	case got < a.file.Size:
		cause := "connection closed"
		if err != nil {
			cause = err.Error()
		}
		return errdefs.Unavailable("download of %s stopped at %d of %d bytes (%s); run 'banger kernel pull %s' again to resume", a.name, got, a.file.Size, cause, d.kernel)
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", d.partPath(a), err)
	}
	c.Done()
	return d.finish(a, h, start > 0)
}

// finish checks the hash of a complete .partial file and moves it to its
// final name. A mismatch after resuming may be our stale prefix, so it
// restarts; a mismatch of a fresh download is the catalog's fault.
func (d *downloader) finish(a artifact, h hash.Hash, resumed bool) error {
	sum := hex.EncodeToString(h.Sum(nil))
	if !strings.EqualFold(sum, a.file.SHA256) {
		if resumed {
			return errRestart
		}
		d.discardAll()
		return errdefs.Invalid("%s sha256 mismatch: catalog says %s, downloaded file has %s; nothing was kept — the catalog entry or its mirror is wrong", a.name, strings.ToLower(a.file.SHA256), sum)
	}
	if err := os.Rename(d.partPath(a), d.path(a)); err != nil {
		return fmt.Errorf("keeping %s: %w", a.name, err)
	}
	os.Remove(d.etagPath(a))
	return nil
}

// discard forgets a's partial download.
func (d *downloader) discard(a artifact) {
	os.Remove(d.partPath(a))
	os.Remove(d.etagPath(a))
}

// discardAll drops the whole partial dir: once one file is proven wrong
// the entry is suspect, and the error promises nothing was kept.
func (d *downloader) discardAll() { os.RemoveAll(d.dir) }

// verifyFile checks that path has the size and sha256 of f.
func verifyFile(path string, f api.CatalogFile) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Size() != f.Size {
		return fmt.Errorf("%s has %d bytes, want %d", path, fi.Size(), f.Size)
	}
	h := sha256.New()
	if err := hashPrefix(h, path, f.Size); err != nil {
		return err
	}
	if sum := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(sum, f.SHA256) {
		return fmt.Errorf("%s has sha256 %s, want %s", path, sum, f.SHA256)
	}
	return nil
}

// hashPrefix feeds the first n bytes of path to h.
func hashPrefix(h hash.Hash, path string, n int64) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("hashing %s: %w", path, err)
	}
	defer f.Close()
	if _, err := io.CopyN(h, f, n); err != nil {
		return fmt.Errorf("hashing %s: %w", path, err)
	}
	return nil
}

// ctxReader stops a copy promptly on cancellation even when the source
// (a local file, buffered response bytes) would keep returning data.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
