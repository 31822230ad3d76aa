package daemon_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"banger/api"
	"banger/internal/daemon"
	"banger/internal/daemon/vms"
	"banger/internal/network"
	"banger/internal/store"
)

// daemonGoroutines returns the stacks of the goroutines running code of
// the daemon's services (exit watchers, pollers, auto-stops, bridges).
func daemonGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		s := string(g)
		if strings.Contains(s, "banger/internal/daemon/") && !strings.Contains(s, "_test.go") {
			out = append(out, s)
		}
	}
	return out
}

// Close returns only once every exit watcher and poller the daemon
// started has stopped, even while VMs boot, stop and die around it:
// nothing of the daemon runs (and so nothing writes to the store) after
// Close. Run it under -race.
func TestCloseWaitsForWatchersAndPollers(t *testing.T) {
	for round := range 3 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			w := newPollWorld(t, func(o *daemon.Options) { o.Config.AutoStopStaleAfter = time.Millisecond })
			ctx := context.Background()
			for i := range 3 {
				w.create(fmt.Sprintf("vm%d", i))
			}
			// Kill one VMM (its watcher marks it stopped), stop one and boot
			// one more while Close runs: Close drains the operations in
			// flight and refuses new ones.
			vm0, _ := w.D.VM(ctx, "vm0")
			var ops sync.WaitGroup
			ops.Go(func() { syscall.Kill(vm0.PID, syscall.SIGKILL) })
			ops.Go(func() { w.D.StopVM(ctx, "vm1") })
			ops.Go(func() {
				w.D.CreateVM(ctx, api.CreateVMRequest{Name: "late", DiskBytes: 64 << 20}, nil)
			})
			time.Sleep(time.Duration(round) * 30 * time.Millisecond)
			w.D.Close()
			ops.Wait()
			if left := daemonGoroutines(); len(left) != 0 {
				t.Fatalf("%d goroutine(s) of the daemon still run after Close:\n%s", len(left), strings.Join(left, "\n\n"))
			}
			w.D = nil
			w.restart() // the cleanup closes a daemon
		})
	}
}

// Listing VMs only reads: it answers while another connection holds the
// database's write lock (a listing that took a write transaction, as one
// did to learn each VM's MAC, would wait for it and time out).
func TestListingVMsDoesNotWrite(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	addr := seedLeasedVM(t, w, api.VMStopped)
	db, err := sql.Open("sqlite", w.Opts.Layout.DBPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(ctx, "ROLLBACK")
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	list, err := w.D.VMs(lctx)
	if err != nil || len(list) != 1 || list[0].IP != "172.16.0.9" || list[0].MAC != network.MAC(addr).String() {
		t.Fatalf("VMs under a held write lock = %+v, %v; want dev with its address and MAC", list, err)
	}
	if v, err := w.D.VM(lctx, "dev"); err != nil || v.MAC == "" {
		t.Fatalf("VM under a held write lock = %+v, %v", v, err)
	}
}

// seedLeasedVM gives w's daemon the host network (over the test's state,
// touching no device) and records a VM "dev" in state with the lease of
// the address it returns, as if it had run.
func seedLeasedVM(t *testing.T, w *world, state api.VMState) netip.Addr {
	t.Helper()
	w.Opts.Network = vms.NewHostNetwork(w.Opts.Config, w.Store, os.Getuid())
	w.restart()
	ctx := context.Background()
	addr := netip.MustParseAddr("172.16.0.9")
	err := w.Store.Tx(ctx, func(tx *store.Tx) error {
		v := store.VM{VM: api.VM{ID: "0000beef", Name: "dev", Image: "default", State: state, VMM: "fake", Dir: t.TempDir(), RuntimeDir: t.TempDir()}}
		if err := tx.PutVM(ctx, v); err != nil {
			return err
		}
		return tx.PutLease(ctx, store.Lease{VM: "dev", Addr: addr, MAC: network.MAC(addr).String()})
	})
	if err != nil {
		t.Fatal(err)
	}
	return addr
}
