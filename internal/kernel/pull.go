package kernel

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/bytesize"
	"banger/internal/disk"
	"banger/internal/fsutil"
	"banger/internal/progress"
)

const (
	partialDir    = ".partial"  // <root>/.partial/<name>/: resumable downloads
	stagingPrefix = ".staging-" // <root>/.staging-<name>-<random>/: being assembled
)

// PullOptions says where a kernel goes and how to fetch it.
type PullOptions struct {
	// Dir is the kernels root, for example ~/.local/state/banger/kernels.
	// It is created if missing. The kernel lands in Dir/<name>.
	Dir string
	// Client fetches http(s) URLs; nil means http.DefaultClient. It should
	// have no overall Timeout, as kernels and modules can be large.
	Client *http.Client
	// Progress receives "download" byte counts per file and an "extract"
	// step; nil discards them.
	Progress progress.Func
	// Source is the catalog URL the entry came from, recorded in the
	// returned api.Kernel.
	Source string
	// FreeSpace returns the bytes available under a directory; nil means
	// the filesystem's (disk.Available).
	FreeSpace func(dir string) (int64, error)
}

// pulling guards against two pulls of one kernel sharing a partial dir
// within this process; the daemon is the only writer of the kernels root.
var pulling sync.Map // final dir -> struct{}

// Pull downloads, verifies and installs the kernel e describes into
// opts.Dir/<e.Name>. Downloads survive failure and cancellation in
// opts.Dir/.partial/<name>/, so calling Pull again resumes them; a file
// that does not match the catalog is deleted instead. The kernel directory
// appears atomically and only when complete.
func Pull(ctx context.Context, e api.CatalogEntry, opts PullOptions) (api.Kernel, error) {
	if err := validateEntry(e); err != nil {
		return api.Kernel{}, err
	}
	if opts.Dir == "" {
		return api.Kernel{}, errors.New("pulling kernel: PullOptions.Dir is empty")
	}
	root, err := filepath.Abs(opts.Dir)
	if err != nil {
		return api.Kernel{}, fmt.Errorf("pulling kernel %q: %w", e.Name, err)
	}
	final := filepath.Join(root, e.Name)
	if _, busy := pulling.LoadOrStore(final, struct{}{}); busy {
		return api.Kernel{}, errdefs.Conflict("kernel %q is already being pulled", e.Name)
	}
	defer pulling.Delete(final)
	if _, err := os.Lstat(final); err == nil {
		return api.Kernel{}, errdefs.Conflict("kernel %q is already pulled; run 'banger kernel rm %s' first to pull it again", e.Name, e.Name)
	}
	k, err := pull(ctx, root, e, opts)
	if err != nil {
		return api.Kernel{}, fmt.Errorf("kernel %q: %w", e.Name, err)
	}
	k.Source = opts.Source
	return k, nil
}

func pull(ctx context.Context, root string, e api.CatalogEntry, opts PullOptions) (_ api.Kernel, err error) {
	d := &downloader{
		client:   opts.Client,
		progress: opts.Progress,
		kernel:   e.Name,
		dir:      filepath.Join(root, partialDir, e.Name),
	}
	if d.client == nil {
		d.client = http.DefaultClient
	}
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return api.Kernel{}, fmt.Errorf("creating download dir: %w", err)
	}
	defer func() {
		if err != nil {
			// Keep what resumes the pull, not an empty directory. Remove
			// fails, as wanted, on a directory that holds something.
			os.Remove(d.dir)
			os.Remove(filepath.Dir(d.dir))
		}
	}()
	arts := artifacts(e)
	if err := checkRoom(d, arts, opts.FreeSpace); err != nil {
		return api.Kernel{}, err
	}
	for _, a := range arts {
		if err := d.fetch(ctx, a); err != nil {
			return api.Kernel{}, err
		}
	}
	k, err := install(root, d, e, arts)
	if err != nil {
		return api.Kernel{}, err
	}
	if err := os.RemoveAll(d.dir); err != nil {
		return api.Kernel{}, fmt.Errorf("removing download dir: %w", err)
	}
	return k, nil
}

// checkRoom refuses a pull whose downloads (what is not on disk yet) and
// extracted modules would not fit, leaving disk.KeepFree to everyone else.
// The catalog's sizes are claims, each at most MaxFileSize, and a download
// is cut at its claim, so this bounds what a pull writes.
func checkRoom(d *downloader, arts []artifact, free func(string) (int64, error)) error {
	if free == nil {
		free = disk.Available
	}
	var need int64
	for _, a := range arts {
		var have int64
		if fi, err := os.Stat(d.path(a)); err == nil {
			have = fi.Size()
		} else if fi, err := os.Stat(d.partPath(a)); err == nil {
			have = fi.Size()
		}
		need += max(a.file.Size-have, 0)
		if a.name == "modules.tar" {
			need += a.file.Size // extracted next to the archive
		}
	}
	avail, err := free(d.dir)
	if err != nil {
		return err
	}
	if room := avail - disk.KeepFree(avail); need > room {
		return errdefs.Invalid("kernel %q needs about %s but only %s is free in %s; free some disk space",
			d.kernel, bytesize.Format(need), bytesize.Format(max(room, 0)), filepath.Dir(filepath.Dir(d.dir)))
	}
	return nil
}

// artifacts lists the files of e with their on-disk names.
func artifacts(e api.CatalogEntry) []artifact {
	arts := []artifact{{name: "vmlinux", file: e.Kernel}}
	if e.Initrd != nil {
		arts = append(arts, artifact{name: "initrd", file: *e.Initrd})
	}
	if e.Modules != nil {
		arts = append(arts, artifact{name: "modules.tar", file: *e.Modules})
	}
	return arts
}

// install assembles the verified downloads in a staging dir and renames it
// into place. The downloads are hard-linked, not moved, so a failure here
// leaves them for the next attempt.
func install(root string, d *downloader, e api.CatalogEntry, arts []artifact) (k api.Kernel, err error) {
	staging, err := os.MkdirTemp(root, stagingPrefix+e.Name+"-")
	if err != nil {
		return api.Kernel{}, fmt.Errorf("creating staging dir: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(staging)
		}
	}()
	if err := os.Chmod(staging, 0o755); err != nil { // MkdirTemp makes 0700
		return api.Kernel{}, err
	}
	final := filepath.Join(root, e.Name)
	k = api.Kernel{
		Name: e.Name, Version: e.Version, Arch: e.Arch, Description: e.Description,
		Dir: final, Kernel: filepath.Join(final, "vmlinux"),
		SHA256: strings.ToLower(e.Kernel.SHA256), Size: e.Kernel.Size,
	}
	for _, a := range arts {
		if err := place(d, a, staging); err != nil {
			return api.Kernel{}, err
		}
		switch a.name {
		case "initrd":
			k.Initrd = filepath.Join(final, "initrd")
		case "modules.tar":
			k.Modules = filepath.Join(final, "modules")
		}
	}
	if err := fsutil.SyncDir(staging); err != nil {
		return api.Kernel{}, err
	}
	if err := os.Rename(staging, final); err != nil {
		return api.Kernel{}, fmt.Errorf("moving kernel into place: %w", err)
	}
	k.CreatedAt = time.Now().UTC()
	// The kernel is in place and whole; a failed fsync of root only risks a
	// crash forgetting the rename, after which a pull simply runs again.
	_ = fsutil.SyncDir(root)
	return k, nil
}

// place puts one verified download into the staging dir.
func place(d *downloader, a artifact, staging string) error {
	if a.name != "modules.tar" {
		if err := os.Link(d.path(a), filepath.Join(staging, a.name)); err != nil {
			return fmt.Errorf("placing %s: %w", a.name, err)
		}
		return nil
	}
	d.progress.Step("extract", "unpacking kernel modules")
	dir := filepath.Join(staging, "modules")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("creating modules dir: %w", err)
	}
	f, err := os.Open(d.path(a))
	if err != nil {
		return fmt.Errorf("opening modules tarball: %w", err)
	}
	defer f.Close()
	return untar(f, dir)
}
