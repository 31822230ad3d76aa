package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"banger/internal/vmm"
)

// maxModelBytes bounds the model file a restore reads.
const maxModelBytes = 64 << 10

// Restore starts QEMU for spec with the saved state's device model and
// -incoming defer, loads the state with migrate-incoming and returns
// once it is loaded, the guest paused: Resume runs it. A state with a
// memory file maps it privately (share=off): the guest's writes go to
// its own copy-on-write pages and the file is never written, so any
// number of VMs can be restored from one state at once and share the
// pages none of them changed.
func (d *Driver) Restore(ctx context.Context, spec vmm.Spec, st vmm.State) (*vmm.Handle, error) {
	if st.Driver != "qemu" {
		return nil, fmt.Errorf("%w: it was saved by the %q driver, not qemu", ErrIncompatibleState, st.Driver)
	}
	if err := checkSpec(spec); err != nil {
		return nil, err
	}
	files, err := stateFiles(st)
	if err != nil {
		return nil, err
	}
	if err := d.checkVersion(ctx, st); err != nil {
		return nil, err
	}
	saved, err := readModel(files[stateModel])
	if err != nil {
		return nil, err
	}
	accel := d.Accel(ctx)
	mem := memBackend{}
	switch {
	case files[stateMemory] != "":
		mem = memBackend{Path: files[stateMemory]}
	case d.memoryPath(spec.RuntimeDir) != "":
		mem = memBackend{Path: d.memoryPath(spec.RuntimeDir), Share: true}
	}
	args := buildArgs(spec, accel, d.tscKHz, mem)
	if diff := saved.diff(deviceModel(args)); diff != "" {
		return nil, fmt.Errorf("%w: the VM's device model differs from the saved one (%s); boot it cold instead", ErrIncompatibleState, diff)
	}
	h, err := d.launch(ctx, spec, accel, mem, append(args, "-incoming", "defer"))
	if err != nil {
		return nil, err
	}
	if err := migrateIn(ctx, h, files[stateStream], files[stateMemory] != ""); err != nil {
		kctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		d.Kill(kctx, h)
		d.clean(spec.RuntimeDir)
		return nil, err
	}
	return h, nil
}

// checkVersion refuses a state another QEMU version wrote.
func (d *Driver) checkVersion(ctx context.Context, st vmm.State) error {
	local, err := d.binaryVersion(ctx)
	if err != nil {
		return err
	}
	if st.VMMVersion != local {
		return fmt.Errorf("%w: it was saved by QEMU %s and this host runs QEMU %s, which need not load it; boot the VM cold from its disks instead (its memory state is lost)",
			ErrIncompatibleState, st.VMMVersion, local)
	}
	return nil
}

// migrateIn loads stream into a QEMU started with -incoming defer.
// ignoreShared must match the save: the memory is in a file, not in the
// stream.
func migrateIn(ctx context.Context, h *vmm.Handle, stream string, ignoreShared bool) error {
	q, err := dialQMP(ctx, h.Sockets["qmp"])
	if err != nil {
		return fmt.Errorf("restoring vm state: %w", err)
	}
	defer q.close()
	if ignoreShared {
		caps := map[string]any{"capabilities": []map[string]any{{"capability": "x-ignore-shared", "state": true}}}
		if _, err := q.call(ctx, "migrate-set-capabilities", caps); err != nil {
			return fmt.Errorf("restoring vm state: %w", err)
		}
	}
	if _, err := q.call(ctx, "migrate-incoming", map[string]any{"uri": "exec:cat " + shellQuote(stream)}); err != nil {
		return fmt.Errorf("restoring vm state: %w", err)
	}
	if err := waitMigration(ctx, q); err != nil {
		if errors.Is(err, io.EOF) || !vmm.Alive(h.PID, h.StartTime) {
			// QEMU exits when a stream does not load.
			return fmt.Errorf("%w: qemu exited while loading %s (a corrupt or foreign state file); boot the VM cold instead", ErrIncompatibleState, stream)
		}
		return fmt.Errorf("restoring vm state: %w", err)
	}
	return nil
}

// stateFiles resolves st's files by role, each confined to st.Dir and
// present; the stream and the model are required.
func stateFiles(st vmm.State) (map[string]string, error) {
	if !filepath.IsAbs(st.Dir) {
		return nil, fmt.Errorf("saved state dir %q is not absolute", st.Dir)
	}
	out := map[string]string{}
	for role, name := range st.Files {
		if _, known := stateNames[role]; !known {
			return nil, fmt.Errorf("%w: unknown file role %q in saved state (written by a newer banger?)", ErrIncompatibleState, role)
		}
		if name == "" || name != filepath.Base(name) || name == "." || name == ".." {
			return nil, fmt.Errorf("saved state file %q for %s is not a plain file name in %s", name, role, st.Dir)
		}
		p := filepath.Join(st.Dir, name)
		fi, err := os.Lstat(p)
		if err != nil {
			return nil, fmt.Errorf("saved state %s: %w", role, err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("saved state %s %s is not a regular file", role, p)
		}
		out[role] = p
	}
	for _, role := range []string{stateStream, stateModel} {
		if out[role] == "" {
			return nil, fmt.Errorf("saved state in %s has no %s file", st.Dir, role)
		}
	}
	return out, nil
}

func readModel(path string) (model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading saved device model: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxModelBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading saved device model: %w", err)
	}
	if len(data) > maxModelBytes {
		return nil, fmt.Errorf("saved device model %s is over %d bytes", path, maxModelBytes)
	}
	var sm savedModel
	if err := json.Unmarshal(data, &sm); err != nil {
		return nil, fmt.Errorf("decoding saved device model %s: %w", path, err)
	}
	if len(sm.DeviceModel) == 0 || !strings.HasPrefix(sm.DeviceModel[0], "banger-qemu-model=") {
		return nil, fmt.Errorf("%w: %s records no device model", ErrIncompatibleState, path)
	}
	return sm.DeviceModel, nil
}
