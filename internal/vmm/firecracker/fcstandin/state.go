package fcstandin

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
)

// Which operations Firecracker accepts before and after InstanceStart
// (its PrebootApiController and RuntimeApiController). Keys are
// "METHOD /path/template"; actions are decided by action_type.
var (
	preBootOnly = set(
		"PUT /boot-source", "PUT /logger", "PUT /metrics", "PUT /serial",
		"PUT /drives/{drive_id}", "PUT /pmem/{id}", "PUT /network-interfaces/{iface_id}",
		"PUT /snapshot/load", "PUT /cpu-config", "PUT /balloon", "PUT /vsock",
		"PUT /mmds/config", "PUT /entropy", "PUT /hotplug/memory",
		"PUT /machine-config", "PATCH /machine-config",
	)
	postBootOnly = set(
		"PATCH /drives/{drive_id}", "PATCH /network-interfaces/{iface_id}", "PATCH /pmem/{id}",
		"PATCH /vm", "PUT /snapshot/create", "PATCH /balloon", "GET /balloon/statistics",
		"PATCH /balloon/statistics", "PATCH /balloon/hinting/start", "GET /balloon/hinting/status",
		"PATCH /balloon/hinting/stop", "GET /hotplug/memory", "PATCH /hotplug/memory",
	)
)

func set(keys ...string) map[string]bool {
	m := map[string]bool{}
	for _, k := range keys {
		m[k] = true
	}
	return m
}

const (
	msgPostBoot = "The requested operation is not supported after starting the microVM."
	msgPreBoot  = "The requested operation is not supported before starting the microVM."
)

// machine is the VMM's state: what was configured, and whether it booted.
// The server calls it with one request at a time.
type machine struct {
	id      string
	version string
	started bool
	// paused: PATCH /vm Paused, or a snapshot loaded without resume_vm.
	paused bool
	// configured is Firecracker's boot_path: a boot-specific resource
	// was configured, so a snapshot can no longer be loaded.
	configured bool
	trackDirty bool

	vcpus, memMiB int
	smt           bool
	kernel        string
	initrd        string
	bootArgs      string
	drives        []drive
	nets          []netIface // in the order they were added
	vsock         *vsockDev
	metrics       *os.File // kept open, as Firecracker keeps it
	logPath       string
	// root is the jail the paths of requests are relative to when the
	// stand-in could not chroot into it; "" otherwise.
	root string
	// tamper is Config.Tamper.
	tamper string

	// hooks into the rest of the stand-in
	bindVsock  func(path string) (*vsockDev, error)
	boot       func()
	ctrlAltDel func()
	// saveGuest writes the guest's memory into a memory file of size
	// bytes; restoreGuest starts the guest from one.
	saveGuest    func(path string, size int64) error
	restoreGuest func(path string) error
}

type netIface struct{ id, tap string } // tap: host_dev_name

type drive struct {
	id       string
	path     string
	root     bool
	readOnly bool
}

// apply carries out a validated request. It returns the status and, for
// 200, the body.
func (m *machine) apply(r *Request) (int, any, *Fault) {
	key := r.Op.Method + " " + r.Op.Path
	if m.started && preBootOnly[key] {
		return 0, nil, badRequest(msgPostBoot)
	}
	if !m.started && postBootOnly[key] {
		return 0, nil, badRequest(msgPreBoot)
	}
	if !m.started && preBootOnly[key] && !notBootSpecific[key] {
		m.configured = true
	}
	b := r.Body
	switch key {
	case "GET /":
		return http.StatusOK, m.instanceInfo(), nil
	case "GET /version":
		return http.StatusOK, map[string]string{"firecracker_version": m.version}, nil
	case "GET /machine-config":
		return http.StatusOK, map[string]any{"vcpu_count": m.vcpus, "mem_size_mib": m.memMiB, "smt": m.smt, "track_dirty_pages": m.trackDirty, "huge_pages": "None"}, nil
	case "GET /vm/config":
		return http.StatusOK, m.fullConfig(), nil
	case "PUT /machine-config":
		return m.machineConfig(int(b.Int("vcpu_count")), int(b.Int("mem_size_mib")), b.Flag("smt"))
	case "PUT /boot-source":
		return m.bootSource(b)
	case "PUT /drives/{drive_id}":
		return m.putDrive(b)
	case "PUT /network-interfaces/{iface_id}":
		return m.putNet(b)
	case "PUT /vsock":
		return m.putVsock(b)
	case "PUT /logger":
		return m.openTarget("Logger error: Failed to open target file", b.String("log_path"), &m.logPath)
	case "PUT /metrics":
		return m.putMetrics(b.String("metrics_path"))
	case "PUT /actions":
		return m.action(b.String("action_type"))
	case "PATCH /vm":
		return m.patchVM(b.String("state"))
	case "PUT /snapshot/create":
		return m.createSnapshot(b)
	case "PUT /snapshot/load":
		return m.loadSnapshot(b)
	}
	// Everything else the spec allows is accepted and not modelled.
	if r.Op.Method == http.MethodGet {
		return http.StatusOK, map[string]any{}, nil
	}
	return http.StatusNoContent, nil, nil
}

func (m *machine) instanceInfo() map[string]string {
	state := "Not started"
	switch {
	case m.started && m.paused:
		state = "Paused"
	case m.started:
		state = "Running"
	}
	return map[string]string{"app_name": "Firecracker", "id": m.id, "state": state, "vmm_version": m.version}
}

func (m *machine) machineConfig(vcpus, mem int, smt bool) (int, any, *Fault) {
	if vcpus == 0 || vcpus > 32 || (smt && vcpus > 1 && vcpus%2 == 1) {
		return 0, nil, badRequest("Machine config error: The number of vCPUs must be greater than 0, less than 32 and must be 1 or an even number if SMT is enabled.")
	}
	if mem == 0 {
		return 0, nil, badRequest("Machine config error: The memory size (MiB) is either 0, or not a multiple of the configured page size.")
	}
	m.vcpus, m.memMiB, m.smt = vcpus, mem, smt
	return http.StatusNoContent, nil, nil
}

func (m *machine) bootSource(b *Value) (int, any, *Fault) {
	kernel, initrd := b.String("kernel_image_path"), b.String("initrd_path")
	if err := openable(m.host(kernel)); err != nil {
		return 0, nil, badRequest("Boot source error: The kernel file cannot be opened: %v", err)
	}
	if initrd != "" {
		if err := openable(m.host(initrd)); err != nil {
			return 0, nil, badRequest("Boot source error: The initrd file cannot be opened: %v", err)
		}
	}
	m.kernel, m.initrd, m.bootArgs = kernel, initrd, b.String("boot_args")
	return http.StatusNoContent, nil, nil
}

func (m *machine) putDrive(b *Value) (int, any, *Fault) {
	d := drive{id: b.String("drive_id"), path: b.String("path_on_host"), root: b.Flag("is_root_device"), readOnly: b.Flag("is_read_only")}
	if b.String("socket") == "" {
		if _, ok := b.Field("is_read_only"); !ok || d.path == "" {
			return 0, nil, badRequest("Drive config error: Unable to create the virtio block device: a virtio block drive needs path_on_host and is_read_only")
		}
		if err := openDisk(m.host(d.path), d.readOnly); err != nil {
			return 0, nil, badRequest("Drive config error: Unable to create the virtio block device: Virtio backend error: Error manipulating the backing file: %v %s", err, d.path)
		}
	}
	for i, old := range m.drives {
		if old.id != d.id && old.root && d.root {
			return 0, nil, badRequest("Drive config error: A root block device already exists!")
		}
		if old.id == d.id {
			m.drives[i] = d
			return http.StatusNoContent, nil, nil
		}
	}
	m.drives = append(m.drives, d)
	return http.StatusNoContent, nil, nil
}

// tapName is what Linux accepts as an interface name (IFNAMSIZ).
var tapName = regexp.MustCompile(`^[^/\s:]{1,15}$`)
var macAddr = regexp.MustCompile(`^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$`)

func (m *machine) putNet(b *Value) (int, any, *Fault) {
	id, tap := b.String("iface_id"), b.String("host_dev_name")
	// The stand-in cannot open a TAP without privileges; it checks the name.
	if !tapName.MatchString(tap) {
		return 0, nil, badRequest("Network config error: Could not create the network device: Open tap device failed: Invalid interface name %q", tap)
	}
	at := -1
	for i, n := range m.nets {
		switch {
		case n.id == id:
			at = i
		case n.tap == tap:
			return 0, nil, badRequest("Network config error: The host device name is already in use.")
		}
	}
	if at < 0 {
		m.nets = append(m.nets, netIface{id, tap})
	} else {
		m.nets[at].tap = tap
	}
	return http.StatusNoContent, nil, nil
}

func (m *machine) putVsock(b *Value) (int, any, *Fault) {
	path := b.String("uds_path")
	if m.vsock != nil {
		m.vsock.close()
		m.vsock = nil
	}
	v, err := m.bindVsock(m.host(path))
	if err != nil {
		return 0, nil, badRequest("Vsock config error: Cannot create backend for vsock device: UnixBind(%v)", err)
	}
	v.cid, v.reqPath = uint32(b.Int("guest_cid")), path
	m.vsock = v
	return http.StatusNoContent, nil, nil
}

func (m *machine) openTarget(what, path string, dst *string) (int, any, *Fault) {
	f, err := os.OpenFile(m.host(path), os.O_WRONLY, 0)
	if err != nil {
		return 0, nil, badRequest("%s: %v", what, err)
	}
	f.Close()
	*dst = path
	return http.StatusNoContent, nil, nil
}

func (m *machine) putMetrics(path string) (int, any, *Fault) {
	if m.metrics != nil {
		return 0, nil, badRequest("Metrics error: Reinitialization of metrics not allowed.")
	}
	f, err := openMetrics(m.host(path))
	if err != nil {
		return 0, nil, badRequest("Metrics error: Cannot initialize the metrics system: %v", err)
	}
	m.metrics = f
	return http.StatusNoContent, nil, nil
}

// host is where path, as a request names it, is on this host: itself, or
// under the jail when the stand-in could not chroot.
func (m *machine) host(path string) string {
	if m.root == "" || path == "" {
		return path
	}
	return filepath.Join(m.root, path)
}

func (m *machine) action(typ string) (int, any, *Fault) {
	switch typ {
	case "InstanceStart":
		if m.started {
			return 0, nil, badRequest(msgPostBoot)
		}
		if m.kernel == "" {
			return 0, nil, badRequest("Start microvm error: Cannot start microvm without kernel configuration.")
		}
		m.started = true
		m.boot()
	case "SendCtrlAltDel":
		if !m.started {
			return 0, nil, badRequest(msgPreBoot)
		}
		m.ctrlAltDel()
	case "FlushMetrics":
		if !m.started {
			return 0, nil, badRequest(msgPreBoot)
		}
		if err := m.flushMetrics(); err != nil {
			return 0, nil, badRequest("Internal VMM error: Metrics error: %v", err)
		}
	}
	return http.StatusNoContent, nil, nil
}

func (m *machine) fullConfig() map[string]any {
	var drives []map[string]any
	for _, d := range m.drives {
		drives = append(drives, map[string]any{"drive_id": d.id, "path_on_host": d.path, "is_root_device": d.root, "is_read_only": d.readOnly})
	}
	out := map[string]any{
		"machine-config": map[string]any{"vcpu_count": m.vcpus, "mem_size_mib": m.memMiB, "track_dirty_pages": m.trackDirty},
		"drives":         drives,
	}
	if m.kernel != "" {
		out["boot-source"] = map[string]any{"kernel_image_path": m.kernel, "boot_args": m.bootArgs}
	}
	var nets []map[string]any
	for _, n := range m.nets {
		nets = append(nets, map[string]any{"iface_id": n.id, "host_dev_name": n.tap})
	}
	if nets != nil {
		out["network-interfaces"] = nets
	}
	if m.vsock != nil {
		out["vsock"] = map[string]any{"guest_cid": m.vsock.cid, "uds_path": m.vsock.reqPath}
	}
	return out
}

func openable(path string) error {
	return openFlags(path, os.O_RDONLY)
}

// openDisk opens a drive's backing file as Firecracker does: for reading
// and writing unless the drive is read-only.
func openDisk(path string, readOnly bool) error {
	if readOnly {
		return openFlags(path, os.O_RDONLY)
	}
	return openFlags(path, os.O_RDWR)
}

func openFlags(path string, flag int) error {
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return pe.Err
		}
		return err
	}
	return f.Close()
}
