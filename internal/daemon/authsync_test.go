package daemon_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestAuthFilesReachTheGuest(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	write := func(rel, content string) {
		p := filepath.Join(home, rel)
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(".local/share/opencode/auth.json", `{"opencode":1}`)
	write(".pi/agent/auth.json", `{"pi":1}`)
	write(".claude/settings.json", `{"not":"copied"}`) // not an auth file
	write(".ssh/id_ed25519", "secret")

	w := newWorld(t)
	vm := w.create("dev")
	// The fake driver keeps each guest's home under guests/<pid>/home.
	guestHome := filepath.Join(filepath.Dir(w.Opts.Layout.ConfigDir), "guests", fmt.Sprint(vm.PID), "home")
	for rel, want := range map[string]string{
		".local/share/opencode/auth.json": `{"opencode":1}`,
		".pi/agent/auth.json":             `{"pi":1}`,
	} {
		p := filepath.Join(guestHome, rel)
		got, err := os.ReadFile(p)
		if err != nil || string(got) != want {
			t.Errorf("guest %s = %q, %v; want %q", rel, got, err, want)
			continue
		}
		if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
			t.Errorf("guest %s mode = %v; want 0600", rel, fi.Mode().Perm())
		}
	}
	for _, rel := range []string{".claude/.credentials.json", ".claude/settings.json", ".ssh/id_ed25519"} {
		if _, err := os.Stat(filepath.Join(guestHome, rel)); !os.IsNotExist(err) {
			t.Errorf("guest has %s; only the listed auth files present on the host are copied", rel)
		}
	}
}
