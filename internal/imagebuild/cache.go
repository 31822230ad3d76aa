package imagebuild

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"banger/internal/disk"
	"banger/internal/fsutil"
)

// File names of a cache entry (and of a build's working state).
const (
	RootfsFile   = "rootfs.ext4"
	WorkSeedFile = "work-seed.ext4"
	entryFile    = "step.json"
)

// Cache holds the disks each build step produced, by step key: one
// directory per key with the rootfs and the work-seed after that step.
// Entries appear atomically (staging directory, then rename).
type Cache struct{ Dir string }

// Entry describes a cached step result.
type Entry struct {
	Key     string    `json:"key"`
	Image   string    `json:"image"` // the image whose build made it
	Step    string    `json:"step"`
	Created time.Time `json:"created"`
}

// Path is the directory of key's entry.
func (c Cache) Path(key string) string { return filepath.Join(c.Dir, key) }

// Has reports whether key's result is cached (complete entries only).
func (c Cache) Has(key string) bool {
	_, err := os.Stat(filepath.Join(c.Path(key), entryFile))
	return err == nil
}

// Longest returns how many of keys, from the first, are cached: the build
// resumes after the last of them.
func (c Cache) Longest(keys []string) int {
	n := 0
	for n < len(keys) && c.Has(keys[n]) {
		n++
	}
	return n
}

// Store copies the step result in dir (RootfsFile, WorkSeedFile) into the
// cache under e.Key, replacing nothing that is already there.
func (c Cache) Store(ctx context.Context, dir string, e Entry) error {
	if c.Has(e.Key) {
		return nil
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return fmt.Errorf("creating build cache: %w", err)
	}
	tmp := filepath.Join(c.Dir, ".tmp-"+e.Key[:12]+"-"+fsutil.RandomHex())
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return fmt.Errorf("creating build cache entry: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	for _, name := range []string{RootfsFile, WorkSeedFile} {
		if _, err := disk.Copy(ctx, filepath.Join(dir, name), filepath.Join(tmp, name)); err != nil {
			return fmt.Errorf("caching %s of step %s: %w", name, e.Step, err)
		}
	}
	b, _ := json.MarshalIndent(e, "", "  ")
	if err := os.WriteFile(filepath.Join(tmp, entryFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("writing build cache entry: %w", err)
	}
	if err := os.Rename(tmp, c.Path(e.Key)); err != nil {
		if c.Has(e.Key) { // a concurrent build stored it first
			return nil
		}
		return fmt.Errorf("moving build cache entry into place: %w", err)
	}
	done = true
	return nil
}

// PruneResult is what a prune removed. Bytes are allocated bytes (the
// disks are sparse: what they take, not their size).
type PruneResult struct {
	Entries    int
	EntryBytes int64
	Temps      int // leftovers of interrupted stores, older than a day
	TempBytes  int64
}

// staleTemp is the age after which a staging directory is taken for the
// leftover of an interrupted store; a store takes seconds or minutes.
const staleTemp = 24 * time.Hour

// Prune removes the entries made by builds of image that are not in keep
// (the steps of its latest build), and leftovers of interrupted stores.
// It returns how many entries it removed.
func (c Cache) Prune(image string, keep []string) (int, error) {
	kept := map[string]bool{}
	for _, k := range keep {
		kept[k] = true
	}
	res, err := c.prune(func(e Entry) bool { return e.Image == image && !kept[e.Key] })
	return res.Entries, err
}

// PruneOrphans removes the entries made by builds of images not in live
// (the registered images, and those being built), and leftovers of
// interrupted stores. An orphan can only ever serve a new build of an
// image of the same name: it is what a deleted image, or builds that
// never succeeded, left behind.
func (c Cache) PruneOrphans(live map[string]bool) (PruneResult, error) {
	return c.prune(func(e Entry) bool { return !live[e.Image] })
}

// prune removes the entries drop selects and stale staging directories.
// Entries whose record cannot be read are left alone. Failures to remove
// one entry do not stop the others; they are returned joined.
func (c Cache) prune(drop func(Entry) bool) (PruneResult, error) {
	var res PruneResult
	ents, err := os.ReadDir(c.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("listing the build cache: %w", err)
	}
	var errs []error
	remove := func(path string, n *int, bytes *int64) {
		size := disk.TreeUsage(path)
		if err := os.RemoveAll(path); err != nil {
			errs = append(errs, fmt.Errorf("pruning the build cache: %w", err))
			return
		}
		*n++
		*bytes += size
	}
	for _, ent := range ents {
		path := filepath.Join(c.Dir, ent.Name())
		if strings.HasPrefix(ent.Name(), ".tmp-") {
			if fi, err := ent.Info(); err == nil && time.Since(fi.ModTime()) > staleTemp {
				remove(path, &res.Temps, &res.TempBytes)
			}
			continue
		}
		b, err := os.ReadFile(filepath.Join(path, entryFile))
		if err != nil {
			continue
		}
		var e Entry
		if json.Unmarshal(b, &e) != nil {
			continue
		}
		e.Key = ent.Name() // the directory is what Has looks up
		if drop(e) {
			remove(path, &res.Entries, &res.EntryBytes)
		}
	}
	return res, errors.Join(errs...)
}
