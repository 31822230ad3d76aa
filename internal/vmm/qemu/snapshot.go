package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"banger/internal/disk"
	"banger/internal/fsutil"
	"banger/internal/vmm"
)

// Files of a saved state, by role (vmm.State.Files).
const (
	// stateStream is the migration stream: device state, and the guest's
	// memory unless the VM kept it in a file.
	stateStream = "stream"
	// stateMemory is the guest memory, byte for byte, when the VM kept it
	// in a file (Options.MemoryDir).
	stateMemory = "memory"
	// stateModel records the device model the state is bound to.
	stateModel = "model"
)

var stateNames = map[string]string{stateStream: "device.state", stateMemory: "memory", stateModel: "model.json"}

// ErrIncompatibleState means a saved state cannot be loaded by this
// driver: another QEMU version wrote it, or it was saved from another
// device model. The VM can still be booted cold from its disks.
var ErrIncompatibleState = errors.New("saved state cannot be restored")

var _ vmm.Snapshotter = (*Driver)(nil)

// Pause stops the vCPUs (QMP stop); QEMU's devices and sockets stay.
func (d *Driver) Pause(ctx context.Context, h *vmm.Handle) error {
	if err := vmm.CheckAlive(h); err != nil {
		return err
	}
	if _, err := qmpDo(ctx, h.Sockets["qmp"], "stop"); err != nil {
		return fmt.Errorf("pausing vm: %w", err)
	}
	return nil
}

// Resume runs the vCPUs again (QMP cont), after Pause or Restore.
func (d *Driver) Resume(ctx context.Context, h *vmm.Handle) error {
	if err := vmm.CheckAlive(h); err != nil {
		return err
	}
	if _, err := qmpDo(ctx, h.Sockets["qmp"], "cont"); err != nil {
		return fmt.Errorf("resuming vm: %w", err)
	}
	return nil
}

// SaveState migrates the paused VM into dir: a migration stream, and,
// for a VM whose memory lives in a shared file, a copy of that file
// (the stream then skips it: x-ignore-shared). Each file is written
// under a temporary name, synced and renamed; the VM stays paused.
func (d *Driver) SaveState(ctx context.Context, h *vmm.Handle, dir string) (vmm.State, error) {
	if err := vmm.CheckAlive(h); err != nil {
		return vmm.State{}, err
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return vmm.State{}, err
	}
	// The device model is read from the running process's own command
	// line: what it really runs, whatever the caller believes.
	args, err := procArgs(h.PID)
	if err != nil {
		return vmm.State{}, fmt.Errorf("saving vm state: %w", err)
	}
	model := deviceModel(args)
	q, err := dialQMP(ctx, h.Sockets["qmp"])
	if err != nil {
		return vmm.State{}, fmt.Errorf("saving vm state: %w", err)
	}
	defer q.close()
	q.conn.SetDeadline(time.Time{}) // a save takes what it takes; ctx bounds it
	version, err := runningVersion(ctx, q)
	if err != nil {
		return vmm.State{}, err
	}
	if _, err := q.call(ctx, "stop", nil); err != nil {
		return vmm.State{}, fmt.Errorf("pausing vm before save: %w", err)
	}
	shared := h.Sockets["memory"] != ""
	st := vmm.State{Driver: "qemu", VMMVersion: version, Dir: dir, Files: map[string]string{}, CPUs: model.cpus(), MemoryMiB: model.memoryMiB()}
	if err := migrateOut(ctx, q, shared, filepath.Join(dir, stateNames[stateStream])); err != nil {
		return vmm.State{}, err
	}
	st.Files[stateStream] = stateNames[stateStream]
	if shared {
		if err := copyInto(ctx, h.Sockets["memory"], filepath.Join(dir, stateNames[stateMemory])); err != nil {
			return vmm.State{}, err
		}
		st.Files[stateMemory] = stateNames[stateMemory]
	}
	data, err := json.Marshal(savedModel{DeviceModel: model})
	if err != nil {
		return vmm.State{}, err
	}
	if err := writeAtomic(filepath.Join(dir, stateNames[stateModel]), data); err != nil {
		return vmm.State{}, fmt.Errorf("writing saved device model: %w", err)
	}
	st.Files[stateModel] = stateNames[stateModel]
	if err := fsutil.SyncDir(dir); err != nil {
		return vmm.State{}, err
	}
	st.Bytes = diskUsage(dir, st.Files)
	return st, nil
}

// migrateOut streams the stopped VM into path (through a temporary name)
// and waits for the migration to end.
func migrateOut(ctx context.Context, q *qmp, ignoreShared bool, path string) error {
	caps := map[string]any{"capabilities": []map[string]any{{"capability": "x-ignore-shared", "state": ignoreShared}}}
	if _, err := q.call(ctx, "migrate-set-capabilities", caps); err != nil {
		return fmt.Errorf("saving vm state: %w", err)
	}
	// The guest is stopped: nothing is gained by throttling the copy
	// (QEMU's default cap is 128 MiB/s).
	if _, err := q.call(ctx, "migrate-set-parameters", map[string]any{"max-bandwidth": int64(1) << 40}); err != nil {
		return fmt.Errorf("saving vm state: %w", err)
	}
	tmp := tempName(path)
	if _, err := q.call(ctx, "migrate", map[string]any{"uri": "exec:cat > " + shellQuote(tmp)}); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("saving vm state: %w", err)
	}
	if err := waitMigration(ctx, q); err != nil {
		if ctx.Err() != nil {
			q.call(context.Background(), "migrate_cancel", nil)
		}
		os.Remove(tmp)
		return fmt.Errorf("saving vm state: %w", err)
	}
	return commit(tmp, path)
}

// waitMigration polls query-migrate until the migration, outgoing or
// incoming, has completed or failed.
func waitMigration(ctx context.Context, q *qmp) error {
	for {
		raw, err := q.call(ctx, "query-migrate", nil)
		if err != nil {
			return err
		}
		var m struct {
			Status    string `json:"status"`
			ErrorDesc string `json:"error-desc"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("decoding query-migrate reply: %w", err)
		}
		switch m.Status {
		case "completed":
			return nil
		case "failed", "cancelled":
			return fmt.Errorf("migration %s: %s", m.Status, m.ErrorDesc)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// copyInto copies a VM's memory file into the state: a reflink where the
// filesystem has them, else a sparse copy (disk.Copy syncs it).
func copyInto(ctx context.Context, src, path string) error {
	tmp := tempName(path)
	os.Remove(tmp)
	if _, err := disk.Copy(ctx, src, tmp); err != nil {
		return fmt.Errorf("saving vm memory: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("saving vm memory: %w", err)
	}
	return nil
}

func writeAtomic(path string, data []byte) error {
	tmp := tempName(path)
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		os.Remove(tmp)
		return err
	}
	return commit(tmp, path)
}

// commit syncs tmp and renames it to path.
func commit(tmp, path string) error {
	f, err := os.Open(tmp)
	if err == nil {
		err = f.Sync()
		f.Close()
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("saving vm state: %w", err)
	}
	return nil
}

func tempName(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
}

// shellQuote quotes s for sh -c, which QEMU's exec: migration runs.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func diskUsage(dir string, files map[string]string) int64 {
	var n int64
	for _, f := range files {
		if fi, err := os.Stat(filepath.Join(dir, f)); err == nil {
			n += allocated(fi)
		}
	}
	return n
}

// allocated is what a file takes on disk: sparse files count their data.
func allocated(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}
