package vms

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"banger/api"
	"banger/internal/disk"
	"banger/internal/fsutil"
	"banger/internal/store"
	"banger/internal/version"
	"banger/internal/vmm"
)

// Mapping older templates (docs/snapshots.md, "Templates saved before
// their memory was mapped"). A template's memory is mapped into a file
// when it is saved (templatemap.go); one saved by an older banger, or
// whose mapping failed, keeps its memory in the stream, which every warm
// create reads whole. At start the daemon maps those in the background,
// one at a time, while they stay in use:
//
//   - the mapping works on a copy of the template's state and disks (hard
//     links, else copies) under a temporary name in the templates
//     directory, so it holds no lock: creates from the template and its
//     delete go on meanwhile;
//   - the mapped state then takes the place of the old one in one rename
//     (RENAME_EXCHANGE) under the templates' write lock, which waits for
//     the creates that read the old state until their restore has its
//     files (restoredone.go), and only if the template is still the one
//     it copied. A crash at any point leaves the old state or the mapped
//     one in place, and the copy under a temporary name, swept at start;
//   - a mapping that fails is recorded in the template's directory
//     (mapFailedFile) with the banger version that tried and the number
//     of its failures with that version, and tried again at later starts
//     until maxMapAttempts of them failed; then not until another banger
//     version starts (an upgrade may fix it), or the file is removed. A
//     failure that is clearly the machine's at that moment, not the
//     template's (transientMapFailure: a full disk, no TAP to lend), is
//     recorded but not counted. A mapping ended by the daemon's stop is
//     not recorded at all: the next start tries again.

// mapFailedFile records, in a template's directory, why its memory could
// not be mapped (a mapFailure).
const mapFailedFile = "map-failed.json"

// mapFailure is what mapFailedFile holds.
type mapFailure struct {
	// Banger is the version of the banger that tried (version.String()).
	Banger string `json:"banger_version"`
	// Attempts counts the failures with that version, the transient ones
	// aside.
	Attempts int `json:"attempts"`
	// Transient tells that the last failure was the machine's at the
	// time (transientMapFailure), not counted in Attempts.
	Transient bool      `json:"transient,omitempty"`
	Error     string    `json:"error"`
	At        time.Time `json:"at"`
}

// maxMapAttempts is how many failed mappings of one template one banger
// version tries before it stops trying at every start: one failure may
// be a busy machine's (QEMU killed by the OOM killer, a timeout), a few
// in a row are the template's.
const maxMapAttempts = 3

// exhausted reports whether f stops this banger version from trying.
func (f mapFailure) exhausted() bool {
	return f.Banger == version.String() && f.Attempts >= maxMapAttempts
}

// transientError marks a mapping failure that is the machine's at the
// moment rather than the template's.
type transientError struct{ error }

func (e transientError) Unwrap() error { return e.error }

// transientMapFailure reports whether err says nothing about the
// template, so that it does not count towards maxMapAttempts: no TAP to
// lend the mapping (transientError), or a full disk or quota, whether a
// system call says so or QEMU's message does.
func transientMapFailure(err error) bool {
	var te transientError
	if errors.As(err, &te) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	// QEMU reports the C library's strerror: "No space left on device".
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, syscall.ENOSPC.Error()) || strings.Contains(msg, syscall.EDQUOT.Error())
}

// maxMapError bounds the error kept in mapFailedFile: a VMM's error may
// carry its console's lines.
const maxMapError = 4 << 10

// mapOlderTemplates starts mapping, in the background, the memory of the
// templates whose state keeps it in the stream. Close cancels and waits
// for it. Without banger's network no VM is restored from a template,
// and a driver that cannot map memory has nothing to do.
func (m *Manager) mapOlderTemplates(ctx context.Context) {
	mm, ok := m.driver.(vmm.MemoryMapper)
	if !ok || m.net == nil {
		return
	}
	ts, err := m.Templates(ctx)
	if err != nil || len(ts) == 0 {
		return
	}
	m.spareMu.Lock()
	defer m.spareMu.Unlock()
	if m.life.Err() != nil {
		return
	}
	m.remaps.Go(func() {
		for _, t := range ts {
			if m.life.Err() != nil {
				return
			}
			m.remapTemplate(m.life, mm, t)
		}
	})
}

// remapTemplate maps template t's memory if it is not mapped and no
// failure of this banger version is recorded for it.
func (m *Manager) remapTemplate(ctx context.Context, mm vmm.MemoryMapper, t api.Template) {
	st, ok, err := readStateDir(filepath.Join(t.Dir, StateDir))
	if err != nil || !ok || mm.Mapped(st) {
		return // an unreadable state is a create's to report
	}
	if f, ok := readMapFailure(t.Dir); ok && f.exhausted() {
		m.log.Info("not mapping a template's memory: it failed too often with this banger version", "template", t.Name, "attempts", f.Attempts, "err", f.Error)
		return
	}
	id, err := templateIdentity(t.Dir)
	if err != nil {
		return // deleted meanwhile
	}
	m.log.Info("mapping the memory of a template saved without it mapped", "template", t.Name)
	done, err := m.remapState(ctx, mm, t, id)
	switch {
	case err == nil && done:
		os.Remove(filepath.Join(t.Dir, mapFailedFile))
		m.events.Event(ctx, "info", "image/"+t.Image, "template "+t.Name+"'s memory was mapped into a file: its warm creates map it instead of reading all of it")
	case err == nil:
		// The template was deleted or replaced meanwhile.
	case ctx.Err() != nil:
		m.log.Info("mapping a template's memory was interrupted by the daemon's stop; the next start tries again", "template", t.Name)
	default:
		m.log.Warn("mapping a template's memory; its restores read the whole stream", "template", t.Name, "err", err)
		f, rerr := m.recordMapFailure(t, id, err)
		if rerr != nil {
			m.log.Warn("recording a failed mapping", "template", t.Name, "err", rerr)
		}
		m.events.Event(ctx, "warn", "image/"+t.Image, fmt.Sprintf(
			"template %s's memory could not be mapped into a file (its warm creates stay slower): %v; %s",
			t.Name, err, retryNote(f, filepath.Join(t.Dir, mapFailedFile))))
	}
}

// retryNote says when banger tries again after failure f, recorded in
// file.
func retryNote(f mapFailure, file string) string {
	switch {
	case f.Transient:
		return "banger tries again at the next start"
	case !f.exhausted():
		return fmt.Sprintf("banger tries again at the next start (%d of %d failures before it stops)", f.Attempts, maxMapAttempts)
	default:
		return fmt.Sprintf("after %d failures banger tries again only after an upgrade, or at the next start once %s is removed", f.Attempts, file)
	}
}

// remapState maps template t's memory on a copy of its state and disks
// and puts the mapped state in place of its own; done is false when the
// template is no longer the one whose identity is id.
func (m *Manager) remapState(ctx context.Context, mm vmm.MemoryMapper, t api.Template, id templateID) (done bool, err error) {
	work := filepath.Join(m.templatesDir(), tmpPrefix+"map-"+t.Name+"-"+fsutil.RandomHex())
	if err := os.Mkdir(work, 0o700); err != nil {
		return false, fmt.Errorf("creating the mapping's directory: %w", err)
	}
	defer os.RemoveAll(work) // the old state, once exchanged
	for _, f := range []string{RootfsFile, WorkFile} {
		if err := linkOrCopy(ctx, filepath.Join(t.Dir, f), filepath.Join(work, f)); err != nil {
			return false, m.goneOr(t, id, err)
		}
	}
	if err := linkTree(ctx, filepath.Join(t.Dir, StateDir), filepath.Join(work, StateDir)); err != nil {
		return false, m.goneOr(t, id, err)
	}
	// The VM the template was saved from, as far as a spec needs it; its
	// runtime directory's parent is where the mapping's goes.
	row := store.VM{VM: api.VM{Name: cmp.Or(t.From, t.Name), Image: t.Image, CPUs: t.CPUs, MemoryMiB: t.MemoryMiB, DiskBytes: t.DiskBytes,
		RuntimeDir: filepath.Join(m.layout.RuntimeDir, "vm", t.Name)}}
	if err := m.mapState(ctx, mm, row, work, t.Dir, true, nil); err != nil {
		return false, m.goneOr(t, id, err)
	}
	return m.swapState(t, id, filepath.Join(work, StateDir))
}

// goneOr is err, or nil when the template was deleted or replaced
// meanwhile (which explains err).
func (m *Manager) goneOr(t api.Template, id templateID, err error) error {
	if now, ierr := templateIdentity(t.Dir); ierr != nil || now != id {
		return nil
	}
	return err
}

// swapState exchanges template t's state directory with mapped, if t is
// still the template whose identity is id.
func (m *Manager) swapState(t api.Template, id templateID, mapped string) (bool, error) {
	m.templates.Lock()
	defer m.templates.Unlock()
	if now, err := templateIdentity(t.Dir); err != nil || now != id {
		return false, nil
	}
	if err := unix.Renameat2(unix.AT_FDCWD, mapped, unix.AT_FDCWD, filepath.Join(t.Dir, StateDir), unix.RENAME_EXCHANGE); err != nil {
		return false, fmt.Errorf("putting the mapped state in place (the filesystem must exchange two directories in one rename): %w", err)
	}
	if err := fsutil.SyncDir(t.Dir); err != nil {
		m.log.Warn("syncing a template's directory after mapping its memory", "template", t.Name, "err", err)
	}
	return true, nil
}

// templateID tells a template apart from one saved under its name after
// it was deleted: its state directory (device and inode) and the content
// of its description and state description.
type templateID struct {
	dev, ino    uint64
	meta, state string
}

func templateIdentity(dir string) (templateID, error) {
	fi, err := os.Stat(filepath.Join(dir, StateDir))
	if err != nil {
		return templateID{}, err
	}
	sys, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return templateID{}, errors.New("no inode for the template's state")
	}
	meta, err := os.ReadFile(filepath.Join(dir, templateMeta))
	if err != nil {
		return templateID{}, err
	}
	state, err := os.ReadFile(filepath.Join(dir, StateDir, stateMeta))
	if err != nil {
		return templateID{}, err
	}
	return templateID{dev: uint64(sys.Dev), ino: sys.Ino, meta: string(meta), state: string(state)}, nil
}

// recordMapFailure records cause in template t's mapFailedFile, if it is
// still the template whose identity is id, counting it unless it is
// transient, and returns the record.
func (m *Manager) recordMapFailure(t api.Template, id templateID, cause error) (mapFailure, error) {
	msg := cause.Error()
	if len(msg) > maxMapError {
		msg = msg[:maxMapError] + "..."
	}
	f := mapFailure{Banger: version.String(), Error: msg, At: time.Now(), Transient: transientMapFailure(cause)}
	// Under the read lock: a delete does not rename the directory away
	// while the file is written into it.
	m.templates.RLock()
	defer m.templates.RUnlock()
	if now, err := templateIdentity(t.Dir); err != nil || now != id {
		return f, nil
	}
	if old, ok := readMapFailure(t.Dir); ok && old.Banger == f.Banger {
		f.Attempts = old.Attempts
	}
	if !f.Transient {
		f.Attempts++
	}
	b, err := json.Marshal(f)
	if err != nil {
		return f, err
	}
	return f, fsutil.WriteFileAtomic(filepath.Join(t.Dir, mapFailedFile), b, 0o600)
}

// mapFailureOf is the recorded failure to map the memory of the template
// in dir, unless its memory is mapped now (a crash between the mapping
// and the record's removal leaves both).
func (m *Manager) mapFailureOf(dir string) *api.TemplateMapFailure {
	f, ok := readMapFailure(dir)
	if !ok {
		return nil
	}
	if mm, ok := m.driver.(vmm.MemoryMapper); ok {
		if st, ok, err := readStateDir(filepath.Join(dir, StateDir)); err == nil && ok && mm.Mapped(st) {
			return nil
		}
	}
	return &api.TemplateMapFailure{Error: f.Error, Attempts: f.Attempts, Transient: f.Transient, Retry: !f.exhausted(), At: f.At}
}

// readMapFailure reads template dir's recorded mapping failure, if any.
func readMapFailure(dir string) (mapFailure, bool) {
	b, err := os.ReadFile(filepath.Join(dir, mapFailedFile))
	if err != nil {
		return mapFailure{}, false
	}
	var f mapFailure
	if err := json.Unmarshal(b, &f); err != nil {
		return mapFailure{}, false // unreadable: tried again
	}
	return f, true
}

// linkOrCopy makes dst a hard link of src, or where the filesystem
// refuses one, a copy (reflink, else sparse).
func linkOrCopy(ctx context.Context, src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	_, err := disk.Copy(ctx, src, dst)
	return err
}

// linkTree recreates the directory tree src at dst, its regular files
// hard links of src's (linkOrCopy); anything else in it is refused.
func linkTree(ctx context.Context, src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.Mkdir(target, 0o700)
		case d.Type().IsRegular():
			return linkOrCopy(ctx, p, target)
		default:
			return fmt.Errorf("copying a template's state: %s is not a regular file or directory", p)
		}
	})
}
