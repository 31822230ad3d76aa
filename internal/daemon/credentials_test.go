package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"banger/api"
	"banger/api/errdefs"
)

// A template records every credential its VM ever received, not its
// auth_sync list: a VM created without credentials that got a 'vm auth
// sync' once holds them all the same, and so does its template.
func TestTemplateRecordsCredentialsReceivedOnRequest(t *testing.T) {
	hostCreds(t)
	w, _, _ := warmWorld(t, false)
	ctx := context.Background()
	none := []string{}
	w.createWith(api.CreateVMRequest{Name: "src", AuthSync: &none})
	if _, err := w.D.AuthSync(ctx, "src", api.AuthSyncRequest{}); err != nil {
		t.Fatal(err)
	}
	if got := w.guestCreds("src"); !slices.Equal(got, allCreds) {
		t.Fatalf("after vm auth sync the guest has %q, want every credential file", got)
	}
	tpl, err := w.D.SnapshotVM(ctx, "src", "tpl", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"claude", "opencode", "pi"}; !slices.Equal(tpl.AuthSync, want) {
		t.Errorf("template records %q, want %q (what its vm received)", tpl.AuthSync, want)
	}
	_, err = w.D.CreateVM(ctx, api.CreateVMRequest{Name: "clean", Image: "tpl", AuthSync: &none}, nil)
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "--cold") {
		t.Errorf("create with --no-auth-sync from the template: %v; want a conflict that offers --cold", err)
	}
	if _, err := w.D.VM(ctx, "clean"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("the refused create left vm clean: %v", err)
	}
}

// A list shrunk after a boot does not forget what that boot copied.
func TestTemplateRecordsCredentialsOfAShrunkList(t *testing.T) {
	hostCreds(t)
	w, _, _ := warmWorld(t, false)
	ctx := context.Background()
	claude := []string{"claude"}
	w.createWith(api.CreateVMRequest{Name: "src", AuthSync: &claude})
	if _, err := w.D.SetAuthSync(ctx, "src", nil); err != nil {
		t.Fatal(err)
	}
	tpl, err := w.D.SnapshotVM(ctx, "src", "tpl", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tpl.AuthSync, claude) {
		t.Errorf("template records %q, want [claude] (its vm's boot copied them)", tpl.AuthSync)
	}
}

// Forks and warm creates hold what the state they start from held, and
// pass it on to their own templates.
func TestCredentialsCarriedByForksAndWarmCreates(t *testing.T) {
	home := hostCreds(t)
	w, _, _ := warmWorld(t, false)
	ctx := context.Background()
	none := []string{}
	w.createWith(api.CreateVMRequest{Name: "src", AuthSync: &none})
	if _, err := w.D.AuthSync(ctx, "src", api.AuthSyncRequest{Tools: []string{"pi"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.D.ForkVM(ctx, "src", api.ForkVMRequest{Name: "twin"}, nil); err != nil {
		t.Fatal(err)
	}
	twin, err := w.D.SnapshotVM(ctx, "twin", "of-twin", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(twin.AuthSync, []string{"pi"}) {
		t.Errorf("template of a fork records %q, want [pi] (its parent received them)", twin.AuthSync)
	}
	// The host's file gone, the warm vm's own sync copies nothing: only
	// its template can have given it pi's credentials.
	os.Remove(filepath.Join(home, ".pi/agent/auth.json"))
	pi := []string{"pi"}
	if _, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "warm", Image: "of-twin", AuthSync: &pi}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := w.D.SetAuthSync(ctx, "warm", nil); err != nil {
		t.Fatal(err)
	}
	again, err := w.D.SnapshotVM(ctx, "warm", "of-warm", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again.AuthSync, []string{"pi"}) {
		t.Errorf("template of a warm-created vm records %q, want [pi] (its template held them)", again.AuthSync)
	}
}

// A template saved before the record existed recorded only its VM's auth
// sync list, which a 'vm auth sync' could exceed: it counts as holding
// every tool's credentials.
func TestOlderTemplateCountsAsHoldingEveryCredential(t *testing.T) {
	w, _, _ := warmWorld(t, false)
	ctx := context.Background()
	none := []string{}
	w.createWith(api.CreateVMRequest{Name: "src", AuthSync: &none})
	tpl, err := w.D.SnapshotVM(ctx, "src", "old", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !tpl.Received || len(tpl.AuthSync) != 0 {
		t.Fatalf("new template = received %v, %q; want a record of nothing received", tpl.Received, tpl.AuthSync)
	}
	stripReceived(t, tpl)
	got, err := w.D.Template(ctx, "old")
	if err != nil || !slices.Equal(got.AuthSync, []string{"opencode", "claude", "pi"}) {
		t.Errorf("older template = %+v, %v; want it to count as holding every tool", got, err)
	}
	_, err = w.D.CreateVM(ctx, api.CreateVMRequest{Name: "clean", Image: "old", AuthSync: &none}, nil)
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("create with --no-auth-sync from an older template: %v; want a conflict", err)
	}
}

// An automatic template from before the record would pass for holding
// every credential and be passed over by the default image's VMs that
// get none: the next cold boot of the image replaces it, so creates are
// warm again.
func TestOlderAutomaticTemplateReplaced(t *testing.T) {
	w, _, _ := warmWorld(t, true)
	ctx := context.Background()
	none := []string{}
	w.createWith(api.CreateVMRequest{Name: "first", AuthSync: &none})
	auto, err := w.D.Template(ctx, "default-warm")
	if err != nil || !auto.Auto {
		t.Fatalf("automatic template = %+v, %v", auto, err)
	}
	stripReceived(t, auto)
	boots := w.Driver.Boots()
	w.createWith(api.CreateVMRequest{Name: "second", AuthSync: &none})
	if got := w.Driver.Boots() - boots; got != 1 {
		t.Fatalf("%d boots for a vm without credentials; want a cold boot, the older template passed over", got)
	}
	again, err := w.D.Template(ctx, "default-warm")
	if err != nil || !again.Received || again.From != "second" || len(again.AuthSync) != 0 {
		t.Fatalf("automatic template after the cold boot = %+v, %v; want it made again from vm second with its record", again, err)
	}
	boots = w.Driver.Boots()
	w.createWith(api.CreateVMRequest{Name: "third", AuthSync: &none})
	if got := w.Driver.Boots() - boots; got != 0 {
		t.Errorf("%d boots for the next vm; want it restored from the new template", got)
	}
}

// stripReceived rewrites t's description as a banger from before the
// credential record wrote it.
func stripReceived(t *testing.T, tpl api.Template) {
	t.Helper()
	meta := filepath.Join(tpl.Dir, "template.json")
	b, err := os.ReadFile(meta)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	delete(raw, "auth_sync_received")
	b, _ = json.Marshal(raw)
	if err := os.WriteFile(meta, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
