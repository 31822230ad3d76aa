package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/testutil/testregistry"
)

// hostCreds writes credential files (and files that are not) into a
// fresh HOME and returns it.
func hostCreds(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	for rel, content := range map[string]string{
		".local/share/opencode/auth.json": `{"opencode":"sk-open"}`,
		".claude/.credentials.json":       `{"claude":"sk-claude"}`,
		".pi/agent/auth.json":             `{"pi":"sk-pi"}`,
		".claude/settings.json":           `{"not":"copied"}`,
		".ssh/id_ed25519":                 "secret",
	} {
		p := filepath.Join(home, rel)
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return home
}

// guestHome is where the fake driver keeps a running guest's /root.
func (w *world) guestHome(vm string) string {
	w.t.Helper()
	v, err := w.D.VM(context.Background(), vm)
	if err != nil {
		w.t.Fatal(err)
	}
	return filepath.Join(filepath.Dir(w.Opts.Layout.ConfigDir), "guests", fmt.Sprint(v.PID), "home")
}

// guestCreds lists which credential files a guest holds, checking each
// is mode 0600 and holds the host's content.
func (w *world) guestCreds(vm string) []string {
	w.t.Helper()
	home, _ := os.UserHomeDir()
	var have []string
	for _, rel := range []string{".local/share/opencode/auth.json", ".claude/.credentials.json", ".pi/agent/auth.json", ".claude/settings.json", ".ssh/id_ed25519"} {
		p := filepath.Join(w.guestHome(vm), rel)
		got, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			continue
		}
		want, _ := os.ReadFile(filepath.Join(home, rel))
		if err != nil || string(got) != string(want) {
			w.t.Errorf("vm %s: guest %s = %q, %v; want the host's %q", vm, rel, got, err, want)
		}
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			w.t.Errorf("vm %s: guest %s mode = %v, want 0600", vm, rel, fi.Mode().Perm())
		}
		have = append(have, rel)
	}
	return have
}

func (w *world) createWith(req api.CreateVMRequest) api.VM {
	w.t.Helper()
	req.DiskBytes = 64 << 20
	vm, err := w.D.CreateVM(context.Background(), req, nil)
	if err != nil {
		w.t.Fatalf("creating vm %s: %v", req.Name, err)
	}
	return vm
}

var allCreds = []string{".local/share/opencode/auth.json", ".claude/.credentials.json", ".pi/agent/auth.json"}

func TestAuthFilesReachTheGuest(t *testing.T) {
	hostCreds(t)
	w := newWorld(t)
	vm := w.create("dev")
	if !slices.Equal(vm.AuthSync, []string{"opencode", "claude", "pi"}) {
		t.Errorf("vm from a registered image: auth_sync = %q, want every tool", vm.AuthSync)
	}
	if got := w.guestCreds("dev"); !slices.Equal(got, allCreds) {
		t.Errorf("guest has %q; want exactly the three credential files", got)
	}
}

// Each VM gets what its create asked for, and the config's auth_sync
// otherwise; a start copies again.
func TestAuthSyncPerVM(t *testing.T) {
	home := hostCreds(t)
	w := newWorld(t)
	ctx := context.Background()
	claude := []string{"claude"}
	none := []string{}
	w.createWith(api.CreateVMRequest{Name: "some", AuthSync: &claude})
	w.createWith(api.CreateVMRequest{Name: "off", AuthSync: &none})
	if got := w.guestCreds("some"); !slices.Equal(got, []string{".claude/.credentials.json"}) {
		t.Errorf("--auth-sync claude: guest has %q", got)
	}
	if got := w.guestCreds("off"); len(got) != 0 {
		t.Errorf("--no-auth-sync: guest has %q", got)
	}
	if v, _ := w.D.VM(ctx, "off"); v.AuthSync == nil || len(v.AuthSync) != 0 {
		t.Errorf("vm show of a VM without auth sync: %#v, want []", v.AuthSync)
	}
	bad := []string{"codex"}
	_, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "bad", AuthSync: &bad, DiskBytes: 64 << 20}, nil)
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), `"codex" is not a tool`) {
		t.Errorf("unknown tool: err = %v", err)
	}

	// A start copies the host's current files again.
	os.WriteFile(filepath.Join(home, ".claude/.credentials.json"), []byte(`{"claude":"rotated"}`), 0o600)
	if _, err := w.D.StopVM(ctx, "some"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.D.StartVM(ctx, "some", nil); err != nil {
		t.Fatal(err)
	}
	if got := w.guestCreds("some"); !slices.Equal(got, []string{".claude/.credentials.json"}) {
		t.Errorf("after a restart: guest has %q", got)
	}

	// The config sets the default for locally made images.
	w.Opts.Config.AuthSync = []string{"pi"}
	w.restart()
	w.create("cfg")
	if got := w.guestCreds("cfg"); !slices.Equal(got, []string{".pi/agent/auth.json"}) {
		t.Errorf("auth_sync = [\"pi\"]: guest has %q", got)
	}
}

// A VM from a pulled image gets no credentials unless asked; vm auth
// sync copies them into it while it runs, and the event names the files
// but not their content.
func TestAuthSyncOffForPulledImages(t *testing.T) {
	hostCreds(t)
	w := newWorld(t)
	requirePullTools(t)
	ctx := context.Background()
	reg := testregistry.New(t, nil)
	w.pull(reg, pushLayers(t, reg, "box/pulled:v1", layer(t, "etc/os-release", "ID=test\n")), "pulled")

	vm := w.createWith(api.CreateVMRequest{Name: "p", Image: "pulled"})
	if vm.AuthSync == nil || len(vm.AuthSync) != 0 {
		t.Errorf("vm from a pulled image: auth_sync = %#v, want []", vm.AuthSync)
	}
	if got := w.guestCreds("p"); len(got) != 0 {
		t.Fatalf("vm from a pulled image has credentials %q", got)
	}
	opencode := []string{"opencode"}
	w.createWith(api.CreateVMRequest{Name: "asked", Image: "pulled", AuthSync: &opencode})
	if got := w.guestCreds("asked"); !slices.Equal(got, []string{".local/share/opencode/auth.json"}) {
		t.Errorf("pulled image with --auth-sync opencode: guest has %q", got)
	}

	pid := vm.PID
	res, err := w.D.AuthSync(ctx, "p", api.AuthSyncRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Files, allCreds) || len(res.Missing) != 0 {
		t.Errorf("auth sync = %+v; want every file copied", res)
	}
	if got := w.guestCreds("p"); !slices.Equal(got, allCreds) {
		t.Errorf("after vm auth sync: guest has %q", got)
	}
	if v, _ := w.D.VM(ctx, "p"); v.PID != pid || v.State != api.VMRunning {
		t.Errorf("vm auth sync restarted the VM: pid %d -> %d, state %s", pid, v.PID, v.State)
	}
	evs, _ := w.D.Events(ctx, "vm/p", 0, 100)
	var msgs []string
	for _, e := range evs {
		msgs = append(msgs, e.Message)
	}
	all := strings.Join(msgs, "\n")
	if !strings.Contains(all, "auth sync on request into vm p (opencode, claude, pi): copied .local/share/opencode/auth.json, .claude/.credentials.json, .pi/agent/auth.json (mode 0600)") {
		t.Errorf("events do not name the files synced:\n%s", all)
	}
	if strings.Contains(all, "sk-") {
		t.Errorf("events hold credential content:\n%s", all)
	}

	if _, err := w.D.AuthSync(ctx, "p", api.AuthSyncRequest{Tools: []string{"codex"}}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("unknown tool: err = %v, want invalid", err)
	}
	if _, err := w.D.StopVM(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.D.AuthSync(ctx, "p", api.AuthSyncRequest{}); err == nil {
		t.Error("auth sync of a stopped VM succeeded")
	}
}

// vm auth set changes what later boots copy, and only them.
func TestSetAuthSyncAppliesFromNextBoot(t *testing.T) {
	hostCreds(t)
	w := newWorld(t)
	ctx := context.Background()
	none := []string{}
	w.createWith(api.CreateVMRequest{Name: "dev", AuthSync: &none})
	v, err := w.D.SetAuthSync(ctx, "dev", []string{"pi"})
	if err != nil || !slices.Equal(v.AuthSync, []string{"pi"}) {
		t.Fatalf("SetAuthSync = %q, %v", v.AuthSync, err)
	}
	if got := w.guestCreds("dev"); len(got) != 0 {
		t.Errorf("setting the list copied %q into the running guest", got)
	}
	if _, err := w.D.RestartVM(ctx, "dev", nil); err != nil {
		t.Fatal(err)
	}
	if got := w.guestCreds("dev"); !slices.Equal(got, []string{".pi/agent/auth.json"}) {
		t.Errorf("after a restart: guest has %q, want pi's file", got)
	}
	w.restart() // the list is stored, not only in memory
	if v, _ := w.D.VM(ctx, "dev"); !slices.Equal(v.AuthSync, []string{"pi"}) {
		t.Errorf("after a daemon restart: auth_sync = %q", v.AuthSync)
	}
	if _, err := w.D.SetAuthSync(ctx, "dev", []string{"codex"}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("unknown tool: err = %v", err)
	}
	if _, err := w.D.SetAuthSync(ctx, "nope", nil); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("unknown vm: err = %v", err)
	}
}
