-- VMs (internal/daemon/vms*.go). name is the DNS label under .vm.
-- handle is the VMM driver's JSON handle of the running process, empty
-- when the VM is not running; the daemon re-adopts from it at start.
CREATE TABLE vms (
	id          TEXT NOT NULL PRIMARY KEY,
	name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
	image       TEXT NOT NULL,
	state       TEXT NOT NULL,
	vmm         TEXT NOT NULL,
	cpus        INTEGER NOT NULL,
	memory_mib  INTEGER NOT NULL,
	disk_bytes  INTEGER NOT NULL,
	dir         TEXT NOT NULL,
	runtime_dir TEXT NOT NULL,
	handle      TEXT NOT NULL DEFAULT '',
	tap         TEXT NOT NULL DEFAULT '',
	host_key    TEXT NOT NULL DEFAULT '',
	keep_alive  INTEGER NOT NULL DEFAULT 0,
	last_error  TEXT NOT NULL DEFAULT '',
	created_at  TEXT NOT NULL,
	started_at  TEXT NOT NULL DEFAULT '',
	stopped_at  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX vms_image ON vms(image);
