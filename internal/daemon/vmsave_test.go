package daemon_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"banger/api"
)

// A fork and a template save pause their source the same way: while its
// state is saved the source's row still says running and its directory
// holds the pause marker, from which a daemon restarted after a crash
// resumes it (TestForkInterruptedByADaemonCrash,
// TestWarmCreateInterruptedByADaemonCrash); afterwards it runs as
// before and the marker is gone.
func TestSaveMarksItsSourcePaused(t *testing.T) {
	cases := []struct {
		name string
		save func(w *world) error
	}{
		{"fork", func(w *world) error {
			_, err := w.D.ForkVM(context.Background(), "dev", api.ForkVMRequest{Name: "twin"}, nil)
			return err
		}},
		{"template", func(w *world) error {
			_, err := w.D.SnapshotVM(context.Background(), "dev", "tpl", nil)
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, _, _, vm, count := forkWorld(t)
			ctx := context.Background()
			type seen struct {
				state  api.VMState
				marker error
				paused bool
			}
			during := make(chan seen, 1)
			w.Driver.OnSave(func(context.Context) {
				row, _ := w.Store.VM(ctx, "dev")
				_, err := os.Stat(filepath.Join(vm.Dir, "fork.paused"))
				during <- seen{row.State, err, w.Driver.Paused(vm.PID)}
			})
			if err := c.save(w); err != nil {
				t.Fatal(err)
			}
			w.Driver.OnSave(nil)
			select {
			case s := <-during:
				if s.state != api.VMRunning || s.marker != nil || !s.paused {
					t.Errorf("during the save the source is recorded %s, marker %v, paused %v; want running, a marker, paused", s.state, s.marker, s.paused)
				}
			case <-time.After(time.Second):
				t.Fatal("the save never saved a state")
			}
			assertParentRuns(t, w, vm, count)
		})
	}
}
