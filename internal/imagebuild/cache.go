package imagebuild

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"banger/internal/disk"
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
	tmp := filepath.Join(c.Dir, ".tmp-"+e.Key[:12]+"-"+randHex())
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

// Prune removes the entries made by builds of image that are not in keep
// (the steps of its latest build), and leftovers of interrupted stores.
// It returns how many entries it removed.
func (c Cache) Prune(image string, keep []string) (int, error) {
	ents, err := os.ReadDir(c.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	kept := map[string]bool{}
	for _, k := range keep {
		kept[k] = true
	}
	n := 0
	for _, ent := range ents {
		path := filepath.Join(c.Dir, ent.Name())
		if strings.HasPrefix(ent.Name(), ".tmp-") {
			if fi, err := ent.Info(); err == nil && time.Since(fi.ModTime()) > 24*time.Hour {
				os.RemoveAll(path)
			}
			continue
		}
		if kept[ent.Name()] {
			continue
		}
		b, err := os.ReadFile(filepath.Join(path, entryFile))
		if err != nil {
			continue
		}
		var e Entry
		if json.Unmarshal(b, &e) == nil && e.Image == image {
			if err := os.RemoveAll(path); err == nil {
				n++
			}
		}
	}
	return n, nil
}

func randHex() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
