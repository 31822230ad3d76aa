-- Guest network state (internal/network).
--
-- A lease ties a VM to an address of the guest network until the VM is
-- deleted; the MAC is derived from the address. vm is the VM's name, which
-- is also its DNS label under .vm, hence NOCASE.
CREATE TABLE leases (
	vm         TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
	ip         TEXT NOT NULL UNIQUE,
	mac        TEXT NOT NULL,
	created_at TEXT NOT NULL
);

-- When each address was last released, so allocation can prefer addresses
-- that have been free longest. seq orders releases (clocks can go back).
CREATE TABLE lease_releases (
	ip          TEXT NOT NULL PRIMARY KEY,
	seq         INTEGER NOT NULL,
	released_at TEXT NOT NULL
);

-- The network settings the leases were made for (one row, id = 1), so the
-- daemon notices when bridge_name, bridge_ip or cidr changed under them.
CREATE TABLE network_config (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	bridge_name TEXT NOT NULL,
	bridge_ip   TEXT NOT NULL,
	cidr        TEXT NOT NULL,
	updated_at  TEXT NOT NULL
);

-- Which TAP of the pool each VM holds while it runs.
CREATE TABLE tap_assignments (
	tap         TEXT NOT NULL PRIMARY KEY,
	vm          TEXT NOT NULL UNIQUE COLLATE NOCASE,
	assigned_at TEXT NOT NULL
);
