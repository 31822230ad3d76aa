package vms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/bytesize"
	"banger/internal/fsutil"
	"banger/internal/image"
	"banger/internal/progress"
	"banger/internal/store"
	"banger/internal/vmm"
)

// Templates (docs/snapshots.md, "Templates"). A template is a booted VM's
// saved state and copies of its disks, made while the VM was paused, so
// both show the same instant. It lives in the image store
// (paths.Layout.TemplatesDir):
//
//	images/templates/NAME/template.json   the api.Template
//	images/templates/NAME/state/          the driver's files and state.json
//	images/templates/NAME/rootfs.ext4     the VM's disks at the save
//	images/templates/NAME/work.ext4
//
// It is written under a temporary name (.tmp-NAME-HEX), synced, and
// renamed: a directory named NAME is always complete. Its state is only
// ever read (restores map its memory privately), so one template starts
// any number of VMs. Its identity (hostname, address, host keys,
// machine-id, entropy) is its VM's; every VM restored from it is given
// its own before it uses the network (warm.go).
const (
	templateMeta = "template.json"
	tmpPrefix    = ".tmp-"
	// autoSuffix names the template banger makes of an image after its
	// first boot: IMAGE-warm.
	autoSuffix = "-warm"
)

const opSnapshot op = "snapshot"

func (m *Manager) templatesDir() string { return m.layout.TemplatesDir }

// Templates lists the templates.
func (m *Manager) Templates(ctx context.Context) ([]api.Template, error) {
	entries, err := os.ReadDir(m.templatesDir())
	if errors.Is(err, os.ErrNotExist) {
		return []api.Template{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing templates: %w", err)
	}
	out := []api.Template{}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		t, err := m.readTemplate(e.Name())
		if err != nil {
			m.log.Warn("skipping an unreadable template", "template", e.Name(), "err", err)
			continue
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Template returns one template.
func (m *Manager) Template(ctx context.Context, name string) (api.Template, error) {
	if image.ValidateName("template", name) != nil {
		return api.Template{}, errdefs.NotFound("template %q not found; run 'banger image list' to see templates", name)
	}
	return m.readTemplate(name)
}

// readTemplate reads the template in the directory name, with its size.
func (m *Manager) readTemplate(name string) (api.Template, error) {
	dir := filepath.Join(m.templatesDir(), name)
	b, err := os.ReadFile(filepath.Join(dir, templateMeta))
	if errors.Is(err, os.ErrNotExist) {
		return api.Template{}, errdefs.NotFound("template %q not found; run 'banger image list' to see templates", name)
	}
	if err != nil {
		return api.Template{}, fmt.Errorf("reading template %q: %w", name, err)
	}
	var t api.Template
	if err := json.Unmarshal(b, &t); err != nil {
		return api.Template{}, fmt.Errorf("reading template %q: %w", name, err)
	}
	if t.Name != name {
		return api.Template{}, fmt.Errorf("reading template %q: its description names %q", name, t.Name)
	}
	if !t.Received {
		t.AuthSync = olderTemplateCredentials()
	}
	t.Dir = dir
	t.Bytes, t.SpareBytes = templateBytes(dir)
	t.StateBytes = diskBytes(filepath.Join(dir, StateDir))
	t.MapFailure = m.mapFailureOf(dir)
	return t, nil
}

// templateState is a template's saved state and disks.
func (m *Manager) templateState(t api.Template) (WarmSource, error) {
	st, ok, err := readStateDir(filepath.Join(t.Dir, StateDir))
	if err == nil && !ok {
		err = errors.New("its saved state is missing")
	}
	if err != nil {
		return WarmSource{}, fmt.Errorf("template %q: %w; delete it with 'banger image delete %s'", t.Name, err, t.Name)
	}
	return WarmSource{State: st, Dir: t.Dir}, nil
}

// SnapshotVM keeps a running or paused VM's state and disks as a
// template of its image, named name. The VM is paused while its state
// is saved and its disks copied, then left as it was.
func (m *Manager) SnapshotVM(ctx context.Context, vm, name string, p progress.Func) (api.Template, error) {
	release, err := m.claim(vm, opSnapshot)
	if err != nil {
		return api.Template{}, err
	}
	defer release()
	return m.snapshot(ctx, vm, name, false, p)
}

// snapshot makes the template; the caller holds the VM's claim.
func (m *Manager) snapshot(ctx context.Context, vm, name string, auto bool, p progress.Func) (api.Template, error) {
	if err := image.ValidateName("template", name); err != nil {
		return api.Template{}, err
	}
	release, err := m.tmplClaims.Claim(name, "save")
	if err != nil {
		return api.Template{}, err
	}
	defer release()
	if err := m.nameFree(ctx, name); err != nil {
		return api.Template{}, err
	}
	snap, err := m.snapshotter(vm)
	if err != nil {
		return api.Template{}, err
	}
	row, err := m.liveRow(ctx, vm)
	if err != nil {
		return api.Template{}, err
	}
	if row.State != api.VMRunning && row.State != api.VMPaused {
		return api.Template{}, errdefs.Conflict("vm %q is %s; only a running or paused vm can be kept as a template", vm, row.State)
	}
	if err := os.MkdirAll(m.templatesDir(), 0o700); err != nil {
		return api.Template{}, fmt.Errorf("creating the templates directory: %w", err)
	}
	tmp := filepath.Join(m.templatesDir(), tmpPrefix+name+"-"+fsutil.RandomHex())
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return api.Template{}, fmt.Errorf("creating the template directory: %w", err)
	}
	defer os.RemoveAll(tmp) // gone once renamed
	final := filepath.Join(m.templatesDir(), name)
	t := api.Template{
		Name: name, Image: row.Image, Auto: auto, From: vm, CPUs: row.CPUs, MemoryMiB: row.MemoryMiB,
		DiskBytes: row.DiskBytes, VMM: m.driver.Name(), CreatedAt: time.Now(),
	}
	if err := m.saveTemplate(ctx, snap, row, &t, tmp, final, p); err != nil {
		return api.Template{}, fmt.Errorf("keeping vm %q as template %q: %w", vm, name, err)
	}
	m.mapTemplateMemory(ctx, row, tmp, final, p)
	// Read after the save: a copy recorded before it may be in the state.
	if t.AuthSync, err = m.Credentials(ctx, vm); err != nil {
		return api.Template{}, err
	}
	t.Received = true
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return api.Template{}, err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(tmp, templateMeta), b, 0o600); err != nil {
		return api.Template{}, fmt.Errorf("writing the template description: %w", err)
	}
	m.templates.Lock()
	err = os.Rename(tmp, final)
	m.templates.Unlock()
	if err != nil {
		return api.Template{}, fmt.Errorf("committing template %q: %w", name, err)
	}
	if err := fsutil.SyncDir(m.templatesDir()); err != nil {
		return api.Template{}, fmt.Errorf("syncing the templates directory: %w", err)
	}
	out, err := m.readTemplate(name)
	if err != nil {
		return api.Template{}, err
	}
	m.events.Event(ctx, "info", "image/"+row.Image, fmt.Sprintf("template %s of image %s saved from vm %s (%s)", name, row.Image, vm, bytesize.Format(uint64(max(out.Bytes, 0)))))
	m.refillSpare(name)
	return out, nil
}

// nameFree refuses a template name that an image or template holds: a
// create's --image names either.
func (m *Manager) nameFree(ctx context.Context, name string) error {
	if _, err := m.images.Image(ctx, name); err == nil {
		return errdefs.Conflict("%q is an image's name; pick another --name for the template", name)
	} else if !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	if _, err := os.Stat(filepath.Join(m.templatesDir(), name)); err == nil {
		return errdefs.Conflict("template %q already exists; pick another --name or delete it with 'banger image delete %s'", name, name)
	}
	return nil
}

// saveTemplate saves the VM's state and copies its disks into dir
// (saveLive: the VM is left as it was whatever happens).
func (m *Manager) saveTemplate(ctx context.Context, snap vmm.Snapshotter, row store.VM, t *api.Template, dir, final string, p progress.Func) error {
	st, err := m.saveLive(ctx, snap, row, liveSave{
		StateDir: filepath.Join(dir, StateDir), DiskDir: dir,
		Durable: true, Final: filepath.Join(final, StateDir), Sync: true,
	}, p)
	if err != nil {
		return err
	}
	t.VMMVersion = st.VMMVersion
	return nil
}

// DeleteTemplate removes a template; VMs made from it are not affected
// (they have their own disks and memory).
func (m *Manager) DeleteTemplate(ctx context.Context, name string) error {
	t, err := m.Template(ctx, name)
	if err != nil {
		return err
	}
	release, err := m.tmplClaims.Claim(name, "delete")
	if err != nil {
		return err
	}
	defer release()
	if err := m.removeTemplate(t.Dir); err != nil {
		return err
	}
	m.events.Event(ctx, "info", "image/"+t.Image, "template "+name+" deleted")
	return nil
}

// removeTemplate renames a template's directory out of the names a
// create looks up (waiting for the creates reading it), then removes it.
func (m *Manager) removeTemplate(dir string) error {
	gone := filepath.Join(filepath.Dir(dir), tmpPrefix+filepath.Base(dir)+"-"+fsutil.RandomHex())
	m.templates.Lock()
	err := os.Rename(dir, gone)
	m.templates.Unlock()
	if err != nil {
		return fmt.Errorf("removing template %s: %w", filepath.Base(dir), err)
	}
	if err := os.RemoveAll(gone); err != nil {
		m.log.Warn("removing a template's files; the next start removes them", "dir", gone, "err", err)
	}
	return nil
}

// RemoveTemplatesOf removes the templates of image (which is being
// deleted) or, with image "", those whose image is no longer registered
// (a prune). It returns how many it removed and the bytes they took.
func (m *Manager) RemoveTemplatesOf(ctx context.Context, imageName string) (n int, bytes int64, err error) {
	ts, err := m.Templates(ctx)
	if err != nil {
		return 0, 0, err
	}
	var errs []error
	for _, t := range ts {
		if imageName != "" && t.Image != imageName {
			continue
		}
		if imageName == "" {
			if _, err := m.images.Image(ctx, t.Image); !errors.Is(err, errdefs.ErrNotFound) {
				continue
			}
		}
		release, err := m.tmplClaims.Claim(t.Name, "delete")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		err = m.removeTemplate(t.Dir)
		release()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n, bytes = n+1, bytes+t.Bytes
		m.events.Event(ctx, "info", "image/"+t.Image, "template "+t.Name+" removed with its image")
	}
	return n, bytes, errors.Join(errs...)
}

// sweepTemplates removes what interrupted saves and deletes left.
func (m *Manager) sweepTemplates() {
	leftovers, _ := filepath.Glob(filepath.Join(m.templatesDir(), tmpPrefix+"*"))
	// and inside templates: spares being made or taken (spare.go)
	inside, _ := filepath.Glob(filepath.Join(m.templatesDir(), "*", tmpPrefix+"*"))
	leftovers = append(leftovers, inside...)
	for _, l := range leftovers {
		if err := os.RemoveAll(l); err != nil {
			m.log.Warn("removing an interrupted template", "dir", l, "err", err)
		} else {
			m.log.Info("removed an interrupted template", "dir", l)
		}
	}
}
