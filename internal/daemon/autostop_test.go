package daemon_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"banger/api"
	"banger/api/stdiomux"
	"banger/internal/agentproto"
	"banger/internal/daemon"
)

// TestAutoStop runs the real pollers over fake VMs: the idle one is
// stopped, the kept-alive one and the one with an attached session are
// not, until keep-alive is dropped and the session ends.
func TestAutoStop(t *testing.T) {
	w := newPollWorld(t, func(o *daemon.Options) {
		o.Config.AutoStopStaleAfter = 300 * time.Millisecond
		// The fake guest's CPU is the busy host's: the CPU rule is covered
		// by TestBusyReason, so here it must never hold a VM up.
		o.IdleCPUPercent = 101
	})
	ctx := context.Background()

	// Kept alive until its session is attached, so it cannot be stopped
	// before.
	if _, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "busy", DiskBytes: 64 << 20, KeepAlive: true}, nil); err != nil {
		t.Fatal(err)
	}
	cl, err := w.D.Agent(ctx, "busy")
	if err != nil {
		t.Fatal(err)
	}
	if gs, err := cl.Stats(ctx); err != nil || gs.SSHConnections > 0 {
		t.Skipf("the fake guest sees the host's ssh connections (%d, %v); auto-stop cannot be judged here", gs.SSHConnections, err)
	}
	if _, err := cl.StartSession(ctx, agentproto.SessionStart{Name: "work", Argv: []string{"sleep", "3600"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.KillSession(context.Background(), agentproto.SessionKillRequest{Name: "work"}) })
	att, err := cl.AttachSession(ctx, agentproto.SessionAttachRequest{Name: "work"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.D.SetKeepAlive(ctx, "busy", false); err != nil {
		t.Fatal(err)
	}
	if _, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "kept", DiskBytes: 64 << 20, KeepAlive: true}, nil); err != nil {
		t.Fatal(err)
	}
	w.create("idle")
	// An editor on vm acp: an exec bridge with a client keeps it in use.
	w.create("acp")
	b, err := w.D.Exec(ctx, "acp", api.ExecRequest{Argv: []string{"sh", "-c", "read -r line"}})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := stdiomux.Dial(ctx, b.Socket)
	if err != nil {
		t.Fatal(err)
	}

	waitState(t, w.D, "idle", api.VMStopped)
	waitRounds(t, w.D, "acp", 2)
	if vm, _ := w.D.VM(ctx, "acp"); vm.State != api.VMRunning {
		t.Errorf("vm acp is %s while an exec client is connected, want running", vm.State)
	}
	if st := stats(t, w.D, "acp", 0); !strings.Contains(st.Busy, "exec client") {
		t.Errorf("acp vm's stats say busy=%q, want the exec client", st.Busy)
	}
	// Once the client leaves, the VM is idle again and stopped.
	conn.Close()
	waitState(t, w.D, "acp", api.VMStopped)
	waitRounds(t, w.D, "kept", 2)
	for _, name := range []string{"busy", "kept"} {
		if vm, _ := w.D.VM(ctx, name); vm.State != api.VMRunning {
			t.Errorf("vm %s is %s, want running", name, vm.State)
		}
	}
	if st := stats(t, w.D, "busy", 0); !strings.Contains(st.Busy, `session "work" attached`) {
		t.Errorf("busy vm's stats say busy=%q, want the attached session", st.Busy)
	}
	if st := stats(t, w.D, "kept", 0); st.IdleSince == nil || st.AutoStopAt != nil {
		t.Errorf("kept vm's stats = %+v; want idle with no auto-stop time", st)
	}
	assertAutoStopEvent(t, w, "idle", true)
	assertAutoStopEvent(t, w, "busy", false)
	assertAutoStopEvent(t, w, "kept", false)

	if _, err := w.D.SetKeepAlive(ctx, "kept", false); err != nil {
		t.Fatal(err)
	}
	waitState(t, w.D, "kept", api.VMStopped)

	if err := att.Detach(); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.StopSession(ctx, agentproto.SessionStopRequest{Name: "work", Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	waitState(t, w.D, "busy", api.VMStopped)
	assertAutoStopEvent(t, w, "busy", true)
}

func assertAutoStopEvent(t *testing.T, w *world, name string, want bool) {
	t.Helper()
	evs, err := w.D.Events(context.Background(), "vm/"+name, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	got := false
	for _, e := range evs {
		if strings.Contains(e.Message, "auto_stop_stale_after") {
			got = true
		}
	}
	if got != want {
		t.Errorf("auto-stop event for %s: %v, want %v (events %+v)", name, got, want, evs)
	}
}

func TestSetKeepAlive(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.create("dev")
	vm, err := w.D.SetKeepAlive(ctx, "dev", true)
	if err != nil || !vm.KeepAlive {
		t.Fatalf("SetKeepAlive(true) = %+v, %v", vm, err)
	}
	if vm, _ := w.D.VM(ctx, "dev"); !vm.KeepAlive {
		t.Error("keep-alive not stored")
	}
	if vm, err := w.D.SetKeepAlive(ctx, "dev", false); err != nil || vm.KeepAlive {
		t.Fatalf("SetKeepAlive(false) = %+v, %v", vm, err)
	}
	if _, err := w.D.SetKeepAlive(ctx, "nope", true); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("SetKeepAlive of a missing vm: %v", err)
	}
}
