package qemu

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"banger/internal/vmm"
)

// mappedStream names the device-only stream of a state whose memory was
// mapped into a file after the save (MapMemory).
const mappedStream = "device-mapped.state"

var _ vmm.MemoryMapper = (*Driver)(nil)

// MapMemory implements vmm.MemoryMapper. A state saved from a VM on
// anonymous memory holds the guest memory in its migration stream, which
// every Restore reads into fresh pages. MapMemory loads that stream into
// a QEMU whose memory is a new file in the state directory, mapped
// shared, without ever running the guest, then saves that QEMU again with
// x-ignore-shared: the new stream holds only the device state, and the
// file the memory. Restores of the result map the file privately
// (Restore). The QEMU it runs has its network device on spec's TAP:
// virtio-net offers the offloads of its backend, and a stream saved on a
// TAP loads only where they are offered.
func (d *Driver) MapMemory(ctx context.Context, spec vmm.Spec, st vmm.State) (vmm.State, error) {
	if st.Driver != "qemu" {
		return st, fmt.Errorf("%w: it was saved by the %q driver, not qemu", ErrIncompatibleState, st.Driver)
	}
	files, err := stateFiles(st)
	if err != nil {
		return st, err
	}
	if files[stateMemory] != "" {
		return st, nil
	}
	if err := checkSpec(spec); err != nil {
		return st, err
	}
	if err := d.checkVersion(ctx, st); err != nil {
		return st, err
	}
	saved, err := readModel(files[stateModel])
	if err != nil {
		return st, err
	}
	accel := d.Accel(ctx)
	memPath := filepath.Join(st.Dir, stateNames[stateMemory])
	memTmp := tempName(memPath)
	os.Remove(memTmp)
	defer os.Remove(memTmp) // gone once renamed
	mem := memBackend{Path: memTmp, Share: true}
	args := buildArgs(spec, accel, d.tscKHz, mem)
	if diff := saved.diff(deviceModel(args)); diff != "" {
		return st, fmt.Errorf("%w: the VM's device model differs from the saved one (%s)", ErrIncompatibleState, diff)
	}
	h, err := d.launch(ctx, spec, accel, mem, append(args, "-incoming", "defer"))
	if err != nil {
		return st, err
	}
	defer func() {
		kctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		d.Kill(kctx, h)
		d.clean(spec.RuntimeDir)
	}()
	if err := migrateIn(ctx, h, files[stateStream], false); err != nil {
		return st, err
	}
	q, err := dialQMP(ctx, h.Sockets["qmp"])
	if err != nil {
		return st, fmt.Errorf("mapping the saved memory: %w", err)
	}
	defer q.close()
	q.conn.SetDeadline(time.Time{}) // ctx bounds it
	stream := filepath.Join(st.Dir, mappedStream)
	if err := migrateOut(ctx, q, true, stream); err != nil {
		return st, err
	}
	// The memory reached the file through QEMU's shared mapping: it is in
	// the page cache until synced.
	if err := syncFile(memTmp); err != nil {
		os.Remove(stream)
		return st, fmt.Errorf("syncing the mapped memory: %w", err)
	}
	if err := os.Rename(memTmp, memPath); err != nil {
		os.Remove(stream)
		return st, fmt.Errorf("mapping the saved memory: %w", err)
	}
	out := st
	out.Files = map[string]string{stateStream: mappedStream, stateMemory: stateNames[stateMemory], stateModel: st.Files[stateModel]}
	if files[stateStream] != stream {
		os.Remove(files[stateStream])
	}
	out.Bytes = diskUsage(st.Dir, out.Files)
	return out, nil
}

// Mapped implements vmm.MemoryMapper: a mapped state has a memory file.
func (d *Driver) Mapped(st vmm.State) bool { return st.Files[stateMemory] != "" }

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
