-- The coding agents' credentials each VM has ever received
-- (internal/authsync tool names), one row per VM and tool: a VM's guest
-- may hold them whatever its auth_sync list says now (a 'vm auth sync' on
-- request copies tools outside it; a list shrunk after a boot leaves what
-- that boot copied). A template records its VM's rows, not its list.
-- Rows are only ever added while the VM exists; they go with it (the
-- trigger; PutVM's INSERT OR REPLACE does not fire it).
CREATE TABLE vm_credentials (
	vm   TEXT NOT NULL COLLATE NOCASE,
	tool TEXT NOT NULL,
	PRIMARY KEY (vm, tool)
);
CREATE TRIGGER vm_credentials_gone AFTER DELETE ON vms BEGIN
	DELETE FROM vm_credentials WHERE vm = OLD.name;
END;
-- What VMs made before this record received is not known: a 'vm auth
-- sync' on request may have copied any tool into any VM that ever ran, so
-- each of those counts as having received every tool.
INSERT INTO vm_credentials (vm, tool)
	SELECT vms.name, t.tool FROM vms,
		(SELECT 'opencode' AS tool UNION ALL SELECT 'claude' UNION ALL SELECT 'pi') AS t
	WHERE vms.started_at != '';
