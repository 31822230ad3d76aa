package daemon_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"banger/internal/daemon/vms"
	"banger/internal/store"
	"banger/internal/vmm"
	"banger/internal/vmm/vmmfake"
)

var _ vms.Reaper = (*vmmfake.Driver)(nil)

// storeNet is fakeNet with its TAPs recorded in the state database, as
// banger's TAP pool records them (a start frees the mappings' TAPs from
// there); it notes every TAP freed while the mapping that held it still
// had its VMM running.
type storeNet struct {
	*fakeNet
	st     *store.Store
	driver *vmmfake.Driver

	mu    sync.Mutex
	early []string // TAP keys freed under a running mapping
	freed []string
}

func (n *storeNet) AcquireTAP(ctx context.Context, vm string) (string, error) {
	tap, err := n.fakeNet.AcquireTAP(ctx, vm)
	if err != nil {
		return "", err
	}
	return tap, n.st.Tx(ctx, func(tx *store.Tx) error { return tx.AssignTap(ctx, tap, vm) })
}

func (n *storeNet) ReleaseTAP(ctx context.Context, vm string) error {
	for _, h := range n.driver.Mappings() {
		if ".map-"+filepath.Base(h.RuntimeDir) == vm {
			n.mu.Lock()
			n.early = append(n.early, vm)
			n.mu.Unlock()
		}
	}
	n.mu.Lock()
	n.freed = append(n.freed, vm)
	n.mu.Unlock()
	if err := n.st.Tx(ctx, func(tx *store.Tx) error { return tx.UnassignTap(ctx, vm) }); err != nil {
		return err
	}
	return n.fakeNet.ReleaseTAP(ctx, vm)
}

func (n *storeNet) held(t *testing.T, vm string) bool {
	t.Helper()
	as, err := n.st.TapAssignments(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if a.VM == vm {
			return true
		}
	}
	return false
}

// mapWorld is warmWorld on a storeNet.
func mapWorld(t *testing.T) (*world, *storeNet) {
	w, nw, _ := warmWorld(t, false)
	sn := &storeNet{fakeNet: nw, st: w.Store, driver: w.Driver}
	w.Opts.Network = sn
	w.restart()
	return w, sn
}

// killDuringMapping leaves w as a daemon killed with -9 during the
// background mapping of an older template leaves it: the mapping's VMM
// runs on, in its runtime directory, holding its TAP. The daemon is not
// closed (a killed daemon runs no clean-up) but left blocked in the
// mapping until the test ends. It returns the mapping's VMM.
func killDuringMapping(t *testing.T, w *world) *vmm.Handle {
	t.Helper()
	unmappedTemplate(t, w)
	h := newHoldMaps(w)
	w.restart()
	h.waitEntered(t)
	w.Driver.OnMap(nil)
	ms := w.Driver.Mappings()
	if len(ms) != 1 {
		t.Fatalf("%d mapping vmm processes run, want 1", len(ms))
	}
	killed := w.D
	w.D = nil
	t.Cleanup(func() {
		h.let()
		killed.Close()
	})
	return ms[0]
}

// A mapping's VMM left running by a daemon killed with -9 is ended at
// the next start, its runtime directory removed, and its TAP freed only
// once the VMM is gone; a restart loop piles nothing up.
func TestMappingLeftByKilledDaemonIsReaped(t *testing.T) {
	w, sn := mapWorld(t)
	left := killDuringMapping(t, w)
	key := ".map-" + filepath.Base(left.RuntimeDir)
	if !sn.held(t, key) {
		t.Fatalf("the mapping holds no TAP (key %s) in the database", key)
	}
	w.restart()
	if vmm.Alive(left.PID, left.StartTime) {
		t.Errorf("the mapping's vmm (pid %d) left by the killed daemon still runs after the next start", left.PID)
	}
	if _, err := os.Stat(left.RuntimeDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the mapping's runtime dir %s is left: %v", left.RuntimeDir, err)
	}
	if sn.held(t, key) {
		t.Errorf("the mapping's TAP (%s) is still held", key)
	}
	sn.mu.Lock()
	early := append([]string(nil), sn.early...)
	freed := strings.Join(sn.freed, ",")
	sn.mu.Unlock()
	if len(early) != 0 {
		t.Errorf("TAPs %v were freed while the mapping holding them still ran", early)
	}
	if !strings.Contains(freed, key) {
		t.Errorf("the mapping's TAP %s was never freed (freed: %s)", key, freed)
	}
	tpls, err := w.D.Templates(context.Background())
	if err != nil || len(tpls) != 1 {
		t.Fatalf("templates = %v, %v", tpls, err)
	}
	waitMapped(t, tpls[0]) // this start maps it again
}

// A mapping's VMM that cannot be ended keeps its TAP and its runtime
// directory (another VM given that TAP could not attach to it), and a
// later start, able to end it, frees both.
func TestMappingThatCannotBeReapedKeepsItsTAP(t *testing.T) {
	w, sn := mapWorld(t)
	left := killDuringMapping(t, w)
	key := ".map-" + filepath.Base(left.RuntimeDir)
	w.Driver.Fail(vmmfake.StepKill, errors.New("operation not permitted"))
	w.Driver.Fail(vmmfake.StepMap, errors.New("busy")) // this start's own mapping
	w.restart()
	if !vmm.Alive(left.PID, left.StartTime) {
		t.Fatal("the mapping's vmm ended although Kill fails")
	}
	if !sn.held(t, key) {
		t.Error("the TAP of a mapping whose vmm still runs was freed")
	}
	if _, err := os.Stat(left.RuntimeDir); err != nil {
		t.Errorf("the runtime dir of a mapping whose vmm still runs was removed: %v", err)
	}
	evs, err := w.D.Events(context.Background(), "daemon", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	warned := false
	for _, e := range evs {
		warned = warned || strings.Contains(e.Message, "could not be ended")
	}
	if !warned {
		t.Error("no event says a mapping's vmm could not be ended")
	}
	w.Driver.Fail(vmmfake.StepKill, nil)
	w.Driver.Fail(vmmfake.StepMap, nil)
	w.restart()
	if vmm.Alive(left.PID, left.StartTime) || sn.held(t, key) {
		t.Errorf("after a start able to end it: vmm alive %v, TAP held %v; want neither", vmm.Alive(left.PID, left.StartTime), sn.held(t, key))
	}
}
