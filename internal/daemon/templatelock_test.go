package daemon_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"banger/api"
	"banger/api/errdefs"
)

// A template delete during a slow warm create waits only until the
// create's restore has the template's files, not for the whole create,
// and the create still succeeds with the template gone.
func TestTemplateDeleteDuringSlowWarmCreate(t *testing.T) {
	w, _, g := warmWorld(t, false)
	ctx := context.Background()
	w.create("src")
	if _, err := w.D.SnapshotVM(ctx, "src", "tpl", nil); err != nil {
		t.Fatal(err)
	}
	// The guest takes its new identity only when let: the create is past
	// its restore and stays there.
	inIdentity, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	g.mu.Lock()
	g.hold = func() {
		once.Do(func() { close(inIdentity) })
		<-release
	}
	g.mu.Unlock()
	var released sync.Once
	let := func() { released.Do(func() { close(release) }) }
	defer let() // a failed test does not leave the create hanging
	created := make(chan error, 1)
	go func() {
		_, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "warm", Image: "tpl"}, nil)
		created <- err
	}()
	select {
	case <-inIdentity:
	case err := <-created:
		t.Fatalf("the warm create ended before its identity step: %v", err)
	}
	deleted := make(chan error, 1)
	go func() { deleted <- w.D.DeleteTemplate(ctx, "tpl") }()
	// Bounded so that a delete that waits for the create (which waits
	// for release) fails the test instead of hanging it.
	select {
	case err := <-deleted:
		if err != nil {
			t.Errorf("deleting the template during the create: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("the template delete still waits for the warm create after 15 s; want it done once the restore has the files")
	}
	let()
	if err := <-created; err != nil {
		t.Fatalf("the warm create failed after its template was deleted: %v", err)
	}
	select {
	case err := <-deleted:
		if err != nil {
			t.Errorf("deleting the template: %v", err)
		}
	default:
	}
	if _, err := w.D.Template(ctx, "tpl"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("template after its delete: %v, want not found", err)
	}
	if got := templateLeftovers(t, w); len(got) != 0 {
		t.Errorf("templates directory holds %v after the delete", got)
	}
	vm, err := w.D.VM(ctx, "warm")
	if err != nil || vm.State != api.VMRunning {
		t.Fatalf("warm vm = %+v, %v; want running", vm, err)
	}
	for _, f := range []string{"rootfs.ext4", "work.ext4"} {
		if _, err := os.Stat(filepath.Join(vm.Dir, f)); err != nil {
			t.Errorf("warm vm has no %s of its own: %v", f, err)
		}
	}
	if err := agentAnswers(ctx, w, "warm"); err != nil {
		t.Errorf("the warm vm's agent does not answer after its template's delete: %v", err)
	}
}
