package store

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"banger/api"
)

// TestVMAuthSyncRoundTrip: none (empty) stays apart from a list.
func TestVMAuthSyncRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	for _, tools := range [][]string{{}, {"claude"}, {"opencode", "claude", "pi"}} {
		v := VM{VM: api.VM{ID: "1", Name: "dev", Image: "img", State: api.VMStopped, AuthSync: tools}}
		if err := s.Tx(ctx, func(tx *Tx) error { return tx.PutVM(ctx, v) }); err != nil {
			t.Fatal(err)
		}
		got, err := s.VM(ctx, "dev")
		if err != nil {
			t.Fatal(err)
		}
		if got.AuthSync == nil || !slices.Equal(got.AuthSync, tools) {
			t.Errorf("auth sync %#v read back as %#v", tools, got.AuthSync)
		}
	}
}

// TestAuthSyncMigration: VMs made before per-VM auth sync keep every
// tool, except those from pulled images, which get none.
func TestAuthSyncMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	old := fstest.MapFS{}
	list, err := migrationList(migrations)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range list {
		if m.version < 5 {
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
	for _, q := range []string{
		`INSERT INTO images (name, managed, dir, rootfs, work_seed, kernel, initrd, modules, kernel_ref, source, digest, size, created_at, updated_at)
		 VALUES ('pulled', 1, '', '/r', '', '/k', '', '', '', 'pull', 'sha256:x', 1, '', ''), ('built', 1, '', '/r', '', '/k', '', '', '', 'build', '', 1, '', '')`,
		`INSERT INTO vms (id, name, image, state, vmm, cpus, memory_mib, disk_bytes, dir, runtime_dir, created_at)
		 VALUES ('1', 'a', 'pulled', 'stopped', 'qemu', 1, 128, 1, '/d', '/r', ''), ('2', 'b', 'built', 'stopped', 'qemu', 1, 128, 1, '/d', '/r', '')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, want := range map[string][]string{"a": {}, "b": {"opencode", "claude", "pi"}} {
		v, err := s.VM(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(v.AuthSync, want) {
			t.Errorf("vm %s auth sync after migration = %q, want %q", name, v.AuthSync, want)
		}
	}
}

func TestMigrationNumbersAreUnique(t *testing.T) {
	fsys := fstest.MapFS{
		"migrations/0001_a.sql": {Data: []byte("SELECT 1;")},
		"migrations/0002_b.sql": {Data: []byte("SELECT 1;")},
		"migrations/0002_c.sql": {Data: []byte("SELECT 1;")},
	}
	_, err := migrationList(fsys)
	if err == nil || !strings.Contains(err.Error(), "0002_b.sql and 0002_c.sql share the number 2; renumber one") {
		t.Fatalf("err = %v, want the two files named", err)
	}
	if _, err := migrationList(migrations); err != nil {
		t.Fatalf("the embedded migrations: %v", err)
	}
}
