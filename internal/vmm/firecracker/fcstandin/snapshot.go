package fcstandin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
)

// Pre-boot requests that do not configure the machine: Firecracker still
// loads a snapshot after them (its PrebootApiController's boot_path stays
// false).
var notBootSpecific = set("PUT /logger", "PUT /metrics", "PUT /serial", "PUT /snapshot/load")

// Firecracker's words for the snapshot refusals (VmmActionError,
// CreateSnapshotError, LoadSnapshotError and what they wrap).
const (
	msgCreateRunning = "Create snapshot error: Cannot save the microVM state: Operation not allowed: save/restore unavailable while running"
	msgDiffNoDirty   = "The requested operation is not supported: Diff snapshots are not allowed on uVMs with dirty page tracking disabled."
	msgLoadAfterCfg  = "Load snapshot error: Loading a microVM snapshot not allowed after configuring boot-specific resources."
	msgLoadFailed    = "Load snapshot error: Failed to restore from snapshot: "
	msgMemTooMany    = "too many fields: either `mem_backend` or `mem_file_path` exclusively is required"
	msgMemMissing    = "missing field: either `mem_backend` or `mem_file_path` is required"
)

// snapshotMagic starts the stand-in's microVM state file; Firecracker's
// has a magic number, a format version and a CRC of its own.
const snapshotMagic = "fcstandin-microvm-state"

// vmState is what the stand-in saves as the microVM state
// (snapshot_path): the device model, with each device's host side as it
// was configured (drive paths, TAP names, the vsock socket), which a
// load reopens as they are, save for the overrides.
type vmState struct {
	Magic    string    `json:"magic"`
	Version  string    `json:"firecracker_version"`
	VCPUs    int       `json:"vcpu_count"`
	MemMiB   int       `json:"mem_size_mib"`
	SMT      bool      `json:"smt"`
	Drives   []stDrive `json:"drives"`
	Nets     []stNet   `json:"nets"`
	Vsock    *stVsock  `json:"vsock,omitempty"`
	BootArgs string    `json:"boot_args"`
}

type stDrive struct {
	ID       string `json:"id"`
	Path     string `json:"path_on_host"`
	Root     bool   `json:"root"`
	ReadOnly bool   `json:"read_only"`
}

type stNet struct{ ID, TAP string }

type stVsock struct {
	CID  uint32 `json:"cid"`
	Path string `json:"uds_path"`
}

// patchVM pauses or resumes the vCPUs. Both are idempotent, as
// Firecracker's vCPU state machine answers a pause while paused.
func (m *machine) patchVM(state string) (int, any, *Fault) {
	m.paused = state == "Paused"
	if m.vsock != nil {
		if m.paused {
			m.vsock.pause()
		} else {
			m.vsock.resume()
		}
	}
	return http.StatusNoContent, nil, nil
}

// createSnapshot writes the microVM state and the guest memory. The VM
// must be paused and stays paused; the vsock device is reset, which
// closes every open connection.
func (m *machine) createSnapshot(b *Value) (int, any, *Fault) {
	if b.String("snapshot_type") == "Diff" && !m.trackDirty {
		return 0, nil, badRequest(msgDiffNoDirty)
	}
	if !m.paused {
		return 0, nil, badRequest(msgCreateRunning)
	}
	st := vmState{Magic: snapshotMagic, Version: m.version, VCPUs: m.vcpus, MemMiB: m.memMiB, SMT: m.smt, BootArgs: m.bootArgs}
	for _, d := range m.drives {
		st.Drives = append(st.Drives, stDrive{d.id, d.path, d.root, d.readOnly})
	}
	for _, n := range m.nets {
		st.Nets = append(st.Nets, stNet{n.id, n.tap})
	}
	if m.vsock != nil {
		st.Vsock = &stVsock{CID: m.vsock.cid, Path: m.vsock.reqPath}
	}
	data, _ := json.Marshal(st)
	if err := writeNew(m.host(b.String("snapshot_path")), data); err != nil {
		return 0, nil, badRequest("Create snapshot error: Cannot perform open on the snapshot backing file: %s", rustIOError(err))
	}
	if err := m.saveGuest(m.host(b.String("mem_file_path")), int64(m.memMiB)<<20); err != nil {
		return 0, nil, badRequest("Create snapshot error: Cannot write memory file: %s", rustIOError(err))
	}
	if err := m.tamperMemory(m.host(b.String("mem_file_path"))); err != nil {
		return 0, nil, badRequest("stand-in: tampering with the memory file: %v", err)
	}
	if m.vsock != nil {
		m.vsock.reset()
	}
	return http.StatusNoContent, nil, nil
}

// loadSnapshot restores a VM in a fresh process. A refusal before the
// restore starts leaves the process as it was; a failure during it is
// fatal, as in Firecracker, which exits after answering.
func (m *machine) loadSnapshot(b *Value) (int, any, *Fault) {
	if m.configured {
		return 0, nil, badRequest(msgLoadAfterCfg)
	}
	st, f := m.readState(b)
	if f != nil {
		return 0, nil, f
	}
	memPath := b.String("mem_file_path")
	if mb, ok := b.Field("mem_backend"); ok && mb.Kind == KindObject {
		memPath = mb.String("backend_path")
		if mb.String("backend_type") == "Uffd" {
			return 0, nil, fatal(msgLoadFailed+"Failed to load guest memory: Error creating guest memory from uffd: "+
				"the stand-in cannot serve guest memory through userfaultfd (%s)", memPath)
		}
	}
	if f := checkMemoryFile(m.host(memPath), int64(st.MemMiB)<<20); f != nil {
		return 0, nil, f
	}
	for _, d := range st.Drives {
		if err := openDisk(m.host(d.Path), d.ReadOnly); err != nil {
			return 0, nil, fatal(msgLoadFailed+"Failed to build microVM from snapshot: Cannot restore devices: Block(BackingFile(%s, %q))", rustIOError(err), d.Path)
		}
	}
	for _, n := range st.Nets {
		if !tapName.MatchString(n.TAP) {
			return 0, nil, fatal(msgLoadFailed+"Failed to build microVM from snapshot: Cannot restore devices: Net(TapOpen(Invalid interface name %q))", n.TAP)
		}
	}
	var vs *vsockDev
	if st.Vsock != nil {
		v, err := m.bindVsock(m.host(st.Vsock.Path))
		if err != nil {
			return 0, nil, fatal(msgLoadFailed+"Failed to build microVM from snapshot: Cannot restore devices: Vsock(UnixBind(%v))", err)
		}
		v.cid, v.reqPath = st.Vsock.CID, st.Vsock.Path
		vs = v
	}
	m.vcpus, m.memMiB, m.smt, m.bootArgs = st.VCPUs, st.MemMiB, st.SMT, st.BootArgs
	m.drives, m.nets, m.vsock = nil, nil, vs
	for _, d := range st.Drives {
		m.drives = append(m.drives, drive{d.ID, d.Path, d.Root, d.ReadOnly})
	}
	for _, n := range st.Nets {
		m.nets = append(m.nets, netIface{n.ID, n.TAP})
	}
	m.trackDirty = b.Flag("track_dirty_pages") || b.Flag("enable_diff_snapshots")
	m.started, m.paused = true, !b.Flag("resume_vm")
	if vs != nil && m.paused {
		vs.pause()
	}
	if err := m.restoreGuest(m.host(memPath)); err != nil {
		return 0, nil, fatal(msgLoadFailed+"Failed to load guest memory: %v", err)
	}
	return http.StatusNoContent, nil, nil
}

// readState reads the microVM state file and applies the overrides.
func (m *machine) readState(b *Value) (*vmState, *Fault) {
	const fromFile = msgLoadFailed + "Failed to get snapshot state from file: "
	data, err := os.ReadFile(m.host(b.String("snapshot_path")))
	if err != nil {
		return nil, fatal(fromFile+"Failed to open snapshot file: %s", rustIOError(err))
	}
	var st vmState
	if err := json.Unmarshal(data, &st); err != nil || st.Magic != snapshotMagic {
		return nil, fatal(fromFile + "Failed to load snapshot state from file: Snapshot error: invalid magic number or corrupted state")
	}
	if ov, ok := b.Field("network_overrides"); ok {
		for _, o := range ov.Items {
			found := false
			for i := range st.Nets {
				if st.Nets[i].ID == o.String("iface_id") {
					st.Nets[i].TAP, found = o.String("host_dev_name"), true
				}
			}
			if !found {
				return nil, fatal(fromFile + "Unknown Network Device.")
			}
		}
	}
	if ov, ok := b.Field("vsock_override"); ok && ov.Kind == KindObject {
		if st.Vsock == nil {
			return nil, fatal(fromFile + "Unknown Vsock Device.")
		}
		st.Vsock.Path = ov.String("uds_path")
	}
	return &st, nil
}

// checkMemoryFile refuses a memory file that cannot back the guest's
// memory: missing, or smaller than it.
func checkMemoryFile(path string, size int64) *Fault {
	const prefix = msgLoadFailed + "Failed to load guest memory: Error creating guest memory from file: "
	fi, err := os.Stat(path)
	if err != nil {
		return fatal(prefix+"Failed to load guest memory: %s", rustIOError(err))
	}
	if fi.Size() < size {
		return fatal(prefix+"Failed to restore guest memory: the memory file holds %d bytes, the guest has %d", fi.Size(), size)
	}
	return nil
}

// checkLoadBody is what Firecracker's API server checks in a load body
// once serde has parsed it: exactly one of mem_backend and mem_file_path.
func checkLoadBody(v *Value) string {
	_, backend := v.Field("mem_backend")
	_, file := v.Field("mem_file_path")
	switch {
	case backend && file:
		return msgMemTooMany
	case !backend && !file:
		return msgMemMissing
	}
	return ""
}

// fatal is a fault after which the VMM exits, as Firecracker does when a
// snapshot load fails part-way.
func fatal(format string, args ...any) *Fault {
	f := badRequest(format, args...)
	f.exit = true
	return f
}

// writeNew creates or truncates path with data, as Firecracker opens its
// snapshot files (create, truncate; the directory must exist).
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// rustIOError is err as Rust's io::Error displays it: "No such file or
// directory (os error 2)".
func rustIOError(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		s := errno.Error()
		if s != "" {
			s = strings.ToUpper(s[:1]) + s[1:]
		}
		return fmt.Sprintf("%s (os error %d)", s, int(errno))
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return ne.Error()
	}
	return err.Error()
}
