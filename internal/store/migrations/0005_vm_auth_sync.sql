-- The coding agents whose host credentials a VM receives at each boot
-- (internal/authsync), comma-separated; '' for none. VMs made before
-- received every tool's, except that VMs from pulled images now receive
-- none, as new ones do by default.
ALTER TABLE vms ADD COLUMN auth_sync TEXT NOT NULL DEFAULT 'opencode,claude,pi';
UPDATE vms SET auth_sync = '' WHERE image IN (SELECT name FROM images WHERE source = 'pull');
