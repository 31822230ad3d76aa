package vms

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"banger/internal/disk"
	"banger/internal/fsutil"
)

// Spare disks. A warm create needs its own copy of its template's disks,
// and where the filesystem has no reflinks that copy is most of the
// create's time after the restore (a sparse copy of every block the
// image uses). So each template keeps one copy made ahead, in its
// directory's spare/, which a create takes by renaming it (taken is then
// made anew in the background) and falls back to copying when there is
// none. The template's size (image list) includes it.
//
// A spare is complete when it is named spare: it is made under a
// temporary name (.tmp-spare-HEX) and renamed, and taken by renaming it
// to a temporary name (.tmp-taken-HEX) first, so two creates never take
// one spare and a crash leaves only temporary names, swept at start.
const spareDir = "spare"

// takeSpare moves template dir's spare disks into dst, a new VM's
// directory, and reports whether it did. On false dst has none of them.
func (m *Manager) takeSpare(dir, dst string) bool {
	taken := filepath.Join(dir, tmpPrefix+"taken-"+fsutil.RandomHex())
	if err := os.Rename(filepath.Join(dir, spareDir), taken); err != nil {
		return false
	}
	defer os.RemoveAll(taken)
	for _, name := range []string{RootfsFile, WorkFile} {
		if err := os.Rename(filepath.Join(taken, name), filepath.Join(dst, name)); err != nil {
			m.log.Warn("taking a template's spare disks", "template", filepath.Base(dir), "err", err)
			os.Remove(filepath.Join(dst, RootfsFile))
			os.Remove(filepath.Join(dst, WorkFile))
			return false
		}
	}
	return true
}

// refillSpare makes template name's spare in the background, unless one
// is there or being made. Close cancels and waits for it. A delete of
// the template waits for it (it reads the template under its lock).
func (m *Manager) refillSpare(name string) {
	m.spareMu.Lock()
	defer m.spareMu.Unlock()
	if m.refilling[name] || m.life.Err() != nil {
		return
	}
	m.refilling[name] = true
	m.spares.Go(func() {
		defer func() {
			m.spareMu.Lock()
			delete(m.refilling, name)
			m.spareMu.Unlock()
		}()
		if err := m.makeSpare(m.life, name); err != nil && m.life.Err() == nil {
			m.log.Warn("making a template's spare disks; creates copy them instead", "template", name, "err", err)
		}
	})
}

func (m *Manager) makeSpare(ctx context.Context, name string) error {
	m.templates.RLock()
	defer m.templates.RUnlock()
	dir := filepath.Join(m.templatesDir(), name)
	if _, err := os.Stat(filepath.Join(dir, templateMeta)); err != nil {
		return nil // deleted meanwhile
	}
	if _, err := os.Stat(filepath.Join(dir, spareDir)); err == nil {
		return nil
	}
	tmp := filepath.Join(dir, tmpPrefix+"spare-"+fsutil.RandomHex())
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // gone once renamed
	for _, f := range []string{RootfsFile, WorkFile} {
		if _, err := disk.Copy(ctx, filepath.Join(dir, f), filepath.Join(tmp, f)); err != nil {
			return err
		}
	}
	if err := fsutil.SyncDir(tmp); err != nil {
		return err
	}
	// A spare made meanwhile stays (the rename fails with ENOTEMPTY,
	// which os.IsExist covers); this one goes with tmp.
	if err := os.Rename(tmp, filepath.Join(dir, spareDir)); err != nil && !os.IsExist(err) {
		return err
	}
	return nil
}

// templateBytes is what template dir takes on disk, and apart from it
// its spare disks; spares being made or taken count in neither.
func templateBytes(dir string) (own, spare int64) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		switch p := filepath.Join(dir, e.Name()); {
		case e.Name() == spareDir:
			spare = diskBytes(p)
		case !strings.HasPrefix(e.Name(), "."):
			own += diskBytes(p)
		}
	}
	return own, spare
}
