-- The egress policy of each VM (internal/network EgressPolicy), apart from
-- the vms table: a VM without a row here has the policy it was created
-- with before policies existed, full. allow is the allow list as JSON.
-- A row goes with its VM (the trigger); PutVM's INSERT OR REPLACE does not
-- fire it (recursive triggers are off).
CREATE TABLE vm_network (
	vm        TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
	mode      TEXT NOT NULL,
	allow     TEXT NOT NULL DEFAULT '[]',
	allow_lan INTEGER NOT NULL DEFAULT 0
);
CREATE TRIGGER vm_network_gone AFTER DELETE ON vms BEGIN
	DELETE FROM vm_network WHERE vm = OLD.name;
END;
