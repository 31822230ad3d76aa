// Package api holds the wire types of the daemon's HTTP/JSON API.
//
// The API is served on a unix socket under /v1/. Plain calls answer with a
// JSON body, or an Error with a 4xx/5xx status. Long operations answer with
// NDJSON (application/x-ndjson): zero or more {"event":...} lines, then
// exactly one {"result":...} or {"error":...} line.
package api

import (
	"time"

	"banger/api/errdefs"
)

// Version is the API path prefix.
const Version = "v1"

// Error is the body of every failed call.
type Error struct {
	Kind    errdefs.Kind `json:"kind"`
	Message string       `json:"message"`
}

// Frame is one NDJSON line of a streamed call.
type Frame struct {
	Event  *Event `json:"event,omitempty"`
	Result any    `json:"result,omitempty"`
	Error  *Error `json:"error,omitempty"`
}

// Event reports progress of a long operation.
type Event struct {
	Time    time.Time `json:"time"`
	Step    string    `json:"step,omitempty"`    // short machine name: "copy", "download", ...
	Message string    `json:"message,omitempty"` // human text
	Item    string    `json:"item,omitempty"`    // which file/layer the counters are about
	Current int64     `json:"current,omitempty"` // bytes (or units) done
	Total   int64     `json:"total,omitempty"`   // bytes expected, 0 when unknown
	Done    bool      `json:"done,omitempty"`    // this item finished
}

// DaemonStatus answers GET /v1/daemon.
type DaemonStatus struct {
	PID        int    `json:"pid"`
	Version    string `json:"version"`
	APIVersion string `json:"api_version"`
	Socket     string `json:"socket"`
	WebURL     string `json:"web_url,omitempty"`
	// WebExposed: the web UI listens beyond loopback (web_listen_addr).
	WebExposed bool      `json:"web_exposed,omitempty"`
	StateDir   string    `json:"state_dir"`
	LogFile    string    `json:"log_file"`
	StartedAt  time.Time `json:"started_at"`
	Images     int       `json:"images"`
	Kernels    int       `json:"kernels"`
	VMs        int       `json:"vms"`
	VMsRunning int       `json:"vms_running"`
}

// Image is a bootable image set: rootfs plus kernel and its companions.
type Image struct {
	Name      string `json:"name"`
	Managed   bool   `json:"managed"`
	Dir       string `json:"dir,omitempty"` // managed images: the daemon-owned directory
	Rootfs    string `json:"rootfs"`
	WorkSeed  string `json:"work_seed,omitempty"`
	Kernel    string `json:"kernel"`
	Initrd    string `json:"initrd,omitempty"`
	Modules   string `json:"modules,omitempty"`
	KernelRef string `json:"kernel_ref,omitempty"` // catalog kernel the image boots with
	Source    string `json:"source"`               // register, promote, pull, build
	Digest    string `json:"digest,omitempty"`     // OCI manifest digest for pulled images
	Size      int64  `json:"size"`                 // apparent bytes of the rootfs
	// Tools are the devbox tools (mise, opencode, claude, pi) found in the
	// rootfs when the image was recorded; empty: none; null: an image
	// recorded before banger looked, so unknown.
	Tools []string `json:"tools"`
	// ToolVersions are the versions of Tools that the devbox build pinned
	// and recorded in the image (/usr/local/share/banger/devbox-tools);
	// a tool the image holds but the build did not install has none.
	ToolVersions map[string]string `json:"tool_versions,omitempty"`
	CreatedAt    time.Time         `json:"created_at"`
	UpdatedAt    time.Time         `json:"updated_at"`
	// Templates are the image's templates (api/template.go), in list and
	// show answers; left out when it has none.
	Templates []Template `json:"templates,omitempty"`
}

// RegisterImageRequest is the body of POST /v1/images.
type RegisterImageRequest struct {
	Name      string `json:"name"`
	Rootfs    string `json:"rootfs"`
	WorkSeed  string `json:"work_seed,omitempty"`
	Kernel    string `json:"kernel,omitempty"`
	Initrd    string `json:"initrd,omitempty"`
	Modules   string `json:"modules,omitempty"`
	KernelRef string `json:"kernel_ref,omitempty"`
}

// DeleteOptions are query options of DELETE calls.
type DeleteOptions struct {
	Force bool `json:"force,omitempty"`
}

// Kernel is a kernel stored locally, pulled from a catalog.
type Kernel struct {
	Name        string    `json:"name"`
	Version     string    `json:"version"`
	Arch        string    `json:"arch"`
	Description string    `json:"description,omitempty"`
	Dir         string    `json:"dir"`
	Kernel      string    `json:"kernel"`
	Initrd      string    `json:"initrd,omitempty"`
	Modules     string    `json:"modules,omitempty"`
	SHA256      string    `json:"sha256"`
	Size        int64     `json:"size"`
	Source      string    `json:"source"` // URL the kernel file was downloaded from
	CreatedAt   time.Time `json:"created_at"`
}

// Catalog is a kernel catalog index (see docs/kernel-catalog.md).
type Catalog struct {
	SchemaVersion int            `json:"schema_version"`
	Kernels       []CatalogEntry `json:"kernels"`
}

// CatalogEntry is one kernel a catalog offers.
type CatalogEntry struct {
	Name        string       `json:"name"`
	Version     string       `json:"version"`
	Arch        string       `json:"arch"`
	Description string       `json:"description,omitempty"`
	Kernel      CatalogFile  `json:"kernel"`
	Initrd      *CatalogFile `json:"initrd,omitempty"`
	Modules     *CatalogFile `json:"modules,omitempty"` // tar (optionally gzip) of lib/modules/<version>
	Pulled      bool         `json:"pulled,omitempty"`  // set by the daemon when listing
}

// CatalogFile is one downloadable artifact of a catalog entry.
type CatalogFile struct {
	URL    string `json:"url"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// LogEntry is one line of the daemon's event log (GET /v1/events): what
// happened to which VM or image, for users to read.
type LogEntry struct {
	ID      int64     `json:"id"`
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	Subject string    `json:"subject,omitempty"`
	Message string    `json:"message"`
}

// PullImageRequest is the body of POST /v1/images/pull, which turns an
// OCI image from a registry into a managed image.
type PullImageRequest struct {
	Ref  string `json:"ref"`            // debian:bookworm, ghcr.io/org/devbox:tag, host:5000/img@sha256:...
	Name string `json:"name,omitempty"` // image name; derived from Ref when empty
	// Size is the rootfs size in bytes; 0 means the content plus headroom.
	Size int64 `json:"size,omitempty"`
	// Platform is os/arch[/variant]; "" means linux on the host's arch.
	Platform string `json:"platform,omitempty"`
	// Insecure allows plain HTTP and unverified TLS; only accepted for
	// loopback and private-network registries.
	Insecure bool `json:"insecure,omitempty"`
	// The kernel: a pulled catalog kernel (KernelRef, defaulting to the
	// config's default_kernel_ref), or host files copied into the image.
	KernelRef string `json:"kernel_ref,omitempty"`
	Kernel    string `json:"kernel,omitempty"`
	Initrd    string `json:"initrd,omitempty"`
	Modules   string `json:"modules,omitempty"`
}

// PullInfo records where a pulled image came from and what it holds; it
// is the "pull" object of a pulled image's manifest.json.
type PullInfo struct {
	Ref          string      `json:"ref"`                    // as the user wrote it
	Resolved     string      `json:"resolved"`               // fully qualified, by digest
	IndexDigest  string      `json:"index_digest,omitempty"` // when Ref named a multi-platform index
	Digest       string      `json:"digest"`                 // image manifest digest
	ConfigDigest string      `json:"config_digest"`
	Platform     string      `json:"platform"`
	Layers       []PullLayer `json:"layers"`
	Config       ImageConfig `json:"config"`
	// Sizes in bytes: compressed layers, file data in the flattened
	// tree, and the rootfs filesystem; Files counts inodes.
	CompressedSize int64 `json:"compressed_size"`
	ContentSize    int64 `json:"content_size"`
	RootfsSize     int64 `json:"rootfs_size"`
	Files          int   `json:"files"`
}

// PullLayer is one layer of a pulled image.
type PullLayer struct {
	Digest    string `json:"digest"`
	MediaType string `json:"media_type"`
	Size      int64  `json:"size"`
}

// ImageConfig is what an OCI image's config says about running it.
type ImageConfig struct {
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	Env        []string `json:"env,omitempty"`
	WorkingDir string   `json:"working_dir,omitempty"`
	User       string   `json:"user,omitempty"`
	StopSignal string   `json:"stop_signal,omitempty"`
}

// VMState is where a VM is in its life.
type VMState string

// VM states.
const (
	VMCreating VMState = "creating" // disks, process and first boot being set up
	VMStarting VMState = "starting" // an existing VM booting, waiting for the guest agent
	VMRunning  VMState = "running"
	VMStopping VMState = "stopping"
	VMStopped  VMState = "stopped"
	VMError    VMState = "error" // creation or start failed; LastError says why
)

// VM is a development VM.
type VM struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"`
	Image      string  `json:"image"`
	State      VMState `json:"state"`
	VMM        string  `json:"vmm"`
	CPUs       int     `json:"cpus"`
	MemoryMiB  int     `json:"memory_mib"`
	DiskBytes  int64   `json:"disk_bytes"` // work disk (/root) size
	IP         string  `json:"ip,omitempty"`
	MAC        string  `json:"mac,omitempty"`
	TAP        string  `json:"tap,omitempty"`
	PID        int     `json:"pid,omitempty"`
	Accel      string  `json:"accel,omitempty"`
	Dir        string  `json:"dir"`
	RuntimeDir string  `json:"runtime_dir"`
	HostKey    string  `json:"host_key,omitempty"` // pinned guest SSH host key (authorized_keys format)
	KeepAlive  bool    `json:"keep_alive,omitempty"`
	// AuthSync names the coding agents whose host credentials the VM
	// receives at each boot (opencode, claude, pi); empty: none.
	AuthSync   []string  `json:"auth_sync"`
	LastError  string    `json:"last_error,omitempty"`
	StateBytes int64     `json:"state_bytes,omitempty"` // saved memory and device state on disk (suspended)
	CreatedAt  time.Time `json:"created_at"`
	StartedAt  time.Time `json:"started_at,omitempty"`
	StoppedAt  time.Time `json:"stopped_at,omitempty"`
	Forwards   []Forward `json:"forwards,omitempty"` // host ports forwarded to it (vm show)

	// Network is the egress policy (vm show).
	Network *NetworkPolicy `json:"network,omitempty"`
}

// CreateVMRequest is the body of POST /v1/vms.
type CreateVMRequest struct {
	Name      string `json:"name"`
	Image     string `json:"image,omitempty"` // default_image_name when empty
	CPUs      int    `json:"cpus,omitempty"`
	MemoryMiB int    `json:"memory_mib,omitempty"`
	DiskBytes int64  `json:"disk_bytes,omitempty"`
	KeepAlive bool   `json:"keep_alive,omitempty"`
	// AuthSync picks the coding agents whose host credentials the VM
	// receives ([] for none); null means the default: auth_sync from the
	// config for images made locally, none for images pulled from a
	// registry.
	AuthSync *[]string `json:"auth_sync,omitempty"`
	// Cold boots the image even when a template of it could start the
	// VM warm (docs/snapshots.md, "Templates").
	Cold bool `json:"cold,omitempty"`

	// Network is the egress policy; nil means the config's
	// default_network_policy and allow_private_networks.
	Network *NetworkPolicy `json:"network,omitempty"`
}

// BuildImageRequest is the body of POST /v1/images/build.
type BuildImageRequest struct {
	Name string `json:"name"` // the image to make
	From string `json:"from"` // the registered image to start from
	// NoDevbox leaves out the devbox steps (packages, sshd, coding tools,
	// opencode service): only Scripts run.
	NoDevbox bool `json:"no_devbox,omitempty"`
	Docker   bool `json:"docker,omitempty"` // add the Docker engine
	// Scripts are host paths of shell scripts run as root in the builder
	// VM, in order, each a cached step; Files are host paths copied next
	// to them (working directory /var/tmp/banger-build).
	Scripts []string `json:"scripts,omitempty"`
	Files   []string `json:"files,omitempty"`
	// Size is the rootfs size in bytes; 0 means the base's plus 2 GiB.
	Size    int64 `json:"size,omitempty"`
	NoCache bool  `json:"no_cache,omitempty"` // run every step
	// BestEffort turns failed downloads of the devbox tools into warnings
	// (used for the default image built offline).
	BestEffort bool `json:"best_effort,omitempty"`
}

// BuildStep is how one build step went.
type BuildStep struct {
	Name     string        `json:"name"`
	Key      string        `json:"key"`
	Cached   bool          `json:"cached"`
	Duration time.Duration `json:"duration"`
}

// ImageBuild is the result of an image build.
type ImageBuild struct {
	Image    Image         `json:"image"`
	From     string        `json:"from"`
	Steps    []BuildStep   `json:"steps"`
	Duration time.Duration `json:"duration"`
}

// PruneReport answers POST /v1/images/prune: what was removed from the
// image caches. Bytes are disk space given back (allocated blocks).
type PruneReport struct {
	OCIBlobs   int   `json:"oci_blobs"` // OCI cache blobs no registered image uses
	OCIBytes   int64 `json:"oci_bytes"`
	BuildSteps int   `json:"build_steps"` // build cache steps of images not registered
	BuildBytes int64 `json:"build_bytes"`
	// Leftovers of interrupted operations: partial downloads, build cache
	// staging directories, default root filesystem work directories.
	Leftovers     int   `json:"leftovers"`
	LeftoverBytes int64 `json:"leftover_bytes"`
	// Templates of images that are gone.
	Templates     int   `json:"templates,omitempty"`
	TemplateBytes int64 `json:"template_bytes,omitempty"`
	// Warnings say what could not be removed, and what to do about it.
	Warnings []string `json:"warnings,omitempty"`
}

// Port is a socket listening in a guest.
type Port struct {
	Proto   string `json:"proto"` // tcp, tcp6, udp, udp6
	Addr    string `json:"addr"`
	Port    int    `json:"port"`
	PID     int    `json:"pid,omitempty"`
	Process string `json:"process,omitempty"`
	// Forwarded lists the host ports (127.0.0.1) forwarded to this port.
	Forwarded []int `json:"forwarded,omitempty"`
}

// WebLogin is the address that logs a browser into the web UI (GET
// /v1/daemon/web-login); it carries the UI's secret.
type WebLogin struct {
	URL string `json:"url"`
}
