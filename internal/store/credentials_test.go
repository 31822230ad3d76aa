package store

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"slices"
	"testing"
	"testing/fstest"

	"banger/api"
)

// TestCredentialsRecord: rows are added, kept once, survive PutVM's
// replace and go with the VM.
func TestCredentialsRecord(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	v := VM{VM: api.VM{ID: "1", Name: "dev", Image: "img", State: api.VMStopped}}
	must(t, s.Tx(ctx, func(tx *Tx) error { return tx.PutVM(ctx, v) }))
	must(t, s.Tx(ctx, func(tx *Tx) error { return tx.AddVMCredentials(ctx, "dev", []string{"pi", "claude"}) }))
	must(t, s.Tx(ctx, func(tx *Tx) error { return tx.AddVMCredentials(ctx, "dev", []string{"claude"}) }))
	must(t, s.Tx(ctx, func(tx *Tx) error { return tx.PutVM(ctx, v) }))
	if got, err := s.VMCredentials(ctx, "dev"); err != nil || !slices.Equal(got, []string{"claude", "pi"}) {
		t.Errorf("credentials = %q, %v; want [claude pi]", got, err)
	}
	must(t, s.Tx(ctx, func(tx *Tx) error { return tx.DeleteVM(ctx, "dev") }))
	if got, err := s.VMCredentials(ctx, "dev"); err != nil || len(got) != 0 {
		t.Errorf("credentials of a deleted vm = %q, %v; want none", got, err)
	}
}

// TestCredentialsMigration: a VM that ran before the record existed may
// have received anything; one that never ran received nothing.
func TestCredentialsMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	old := fstest.MapFS{}
	list, err := migrationList(migrations)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range list {
		if m.version < 7 {
			body, _ := fs.ReadFile(migrations, m.path)
			old[m.path] = &fstest.MapFile{Data: body}
		}
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	s := &Store{Reader: Reader{q: db}, db: db}
	if err := s.migrate(ctx, old); err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`INSERT INTO vms (id, name, image, state, vmm, cpus, memory_mib, disk_bytes, dir, runtime_dir, created_at, started_at, auth_sync)
		VALUES ('1', 'ran', 'i', 'stopped', 'qemu', 1, 128, 1, '/d', '/r', '', '2025-01-01T00:00:00Z', ''),
		       ('2', 'new', 'i', 'stopped', 'qemu', 1, 128, 1, '/d', '/r', '', '', 'claude')`)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, want := range map[string][]string{"ran": {"claude", "opencode", "pi"}, "new": {}} {
		if got, err := s.VMCredentials(ctx, name); err != nil || !slices.Equal(got, want) {
			t.Errorf("vm %s credentials after migration = %q, %v; want %q", name, got, err, want)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
