package daemon_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/agentproto"
	"banger/internal/daemon/vms"
	"banger/internal/testutil/hostileguest"
	"banger/internal/vmm"
	"banger/internal/vmm/vmmfake"
)

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// A guest that replaced its agent floods the stats poller. What the daemon
// keeps per sample must stay small whatever the guest sends: a reply far
// larger than a stats sample needs is refused, and an accepted one has its
// lists and strings cut before it enters the history.
func TestHostileStatsFloodKeepsHeapBounded(t *testing.T) {
	tests := []struct {
		name           string
		disks, nameLen int
		samples        int
		maxPerSample   uint64 // heap growth allowed per sample
		refused        bool
	}{
		// ~10 MB replies of 150 disks with 16 KiB names (the attack of
		// the report, scaled down to keep the test's memory modest).
		{name: "oversized replies", disks: 150, nameLen: 16 << 10, samples: 12, maxPerSample: 64 << 10, refused: true},
		// The largest reply accepted: 32 disks and interfaces whose names
		// are cut to their bounds.
		{name: "largest accepted replies", disks: 32, nameLen: 440, samples: 60, maxPerSample: 32 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newPollWorld(t, nil)
			g := hostileguest.New()
			w.Driver.ServeAgent(g.Serve)
			w.create("dev")
			// Oversized replies are built once and sent many times, so the
			// hostile guest, which shares this process, holds one copy.
			var flood hostileguest.Handler
			if tt.refused {
				flood = hostileguest.RawLine(hostileguest.StatsLine(tt.disks, tt.nameLen))
			} else {
				flood = hostileguest.StatsFlood(tt.disks, tt.nameLen)
			}
			waitRounds(t, w.D, "dev", 2) // the daemon's own first allocations
			before := heapInUse()
			g.Handle(agentproto.CallStats, flood)
			waitRounds(t, w.D, "dev", tt.samples)
			st := stats(t, w.D, "dev", -1)
			last := st.History[len(st.History)-1]
			// Two honest rounds let the last hostile connection's teardown
			// finish; the hostile samples stay in the history.
			g.Handle(agentproto.CallStats, nil)
			waitRounds(t, w.D, "dev", 2)
			after := heapInUse()
			runtime.KeepAlive(flood) // counted in before: keep it in after
			grown := int64(after) - int64(before)
			t.Logf("%d hostile samples of %d disks with %d-byte names: heap %.1f MiB -> %.1f MiB (%+.1f KiB per sample), guest error %q",
				tt.samples, tt.disks, tt.nameLen, mib(before), mib(after), float64(grown)/1024/float64(tt.samples), last.GuestError)
			// 16 MiB of slack for what the rest of the process does
			// meanwhile (race detector, connections being set up again);
			// before the bounds the oversized case grew by ~8 MiB per
			// sample, 93 MiB in all.
			if allowed := 16<<20 + int64(tt.maxPerSample)*int64(tt.samples); grown > allowed {
				t.Errorf("heap grew by %.1f MiB over %d samples; want at most %.1f MiB",
					float64(grown)/(1<<20), tt.samples, float64(allowed)/(1<<20))
			}
			if tt.refused && last.GuestError == "" {
				t.Errorf("an oversized stats reply was accepted")
			}
			if !tt.refused && (last.GuestError != "" || len(last.Disks) != tt.disks) {
				t.Errorf("newest sample has %d disks, guest error %q; want %d disks, no error", len(last.Disks), last.GuestError, tt.disks)
			}
			for _, d := range last.Disks {
				if len(d.Device) > 128 || len(d.Mount) > 256 {
					t.Fatalf("disk strings of %d and %d bytes kept", len(d.Device), len(d.Mount))
				}
			}
			if g.Calls(agentproto.CallStats) < tt.samples {
				t.Errorf("the hostile guest answered %d stats calls; want at least %d", g.Calls(agentproto.CallStats), tt.samples)
			}
		})
	}
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// The daemon's other readers of guest data, each fed by a hostile guest:
// lists over their count are refused, strings are cut, and output the
// daemon reads whole stops at its bound instead of filling memory.
func TestHostileGuestThroughTheDaemon(t *testing.T) {
	w := newWorld(t)
	g := hostileguest.New()
	w.Driver.ServeAgent(g.Serve)
	w.create("dev")
	ctx := context.Background()
	long := strings.Repeat("y", 64<<10)

	g.Handle(agentproto.CallPorts, hostileguest.RawLine(hostileguest.ResultLine(hostileguest.Many(5000, `{"proto":"tcp","port":1}`))))
	if _, err := w.D.Ports(ctx, "dev"); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("5000 ports: %v; want an invalid error", err)
	}
	g.Handle(agentproto.CallPorts, hostileguest.Reply([]agentproto.Port{{Proto: "tcp", Port: 8080, Process: hostileguest.Escapes + long}}))
	if ps, err := w.D.Ports(ctx, "dev"); err != nil || len(ps) != 1 || len(ps[0].Process) > 256 || !strings.HasPrefix(ps[0].Process, hostileguest.Escapes) {
		t.Errorf("a port with a 64 KiB process name: %d ports, err %v; want one, its name cut, escapes kept for the renderer", len(ps), err)
	}

	g.Handle(agentproto.CallSessionList, hostileguest.Reply([]agentproto.Session{{Name: "s" + long, Argv: []string{long}, State: agentproto.SessionRunning}}))
	if ss, err := w.D.Sessions(ctx, "dev"); err != nil || len(ss) != 1 || len(ss[0].Name) > 256 || len(ss[0].Argv[0]) > 4<<10 {
		t.Errorf("a session with 64 KiB name and argv: %+v, %v; want them cut", len(ss), err)
	}

	g.Handle(agentproto.CallSessionLogs, hostileguest.Frames(agentproto.FrameStdout,
		agentproto.End{Error: &agentproto.Error{Kind: errdefs.KindInternal, Message: strings.Repeat("z", 512<<10)}}, []byte("line\n")))
	var logs strings.Builder
	err := w.D.SessionLogs(ctx, "dev", "s", api.SessionLogsRequest{}, &logs)
	if err == nil || len(err.Error()) > 5<<10 || logs.String() != "line\n" {
		t.Errorf("logs ending in a 512 KiB error: output %q, error of %d bytes; want the output and a cut error", logs.String(), len(errString(err)))
	}

	// The session preflight reads its script's output whole: a guest
	// that never stops writing ends the call at the bound.
	g.Handle(agentproto.CallExec, hostileguest.Flood(agentproto.FrameStdout, bytes.Repeat([]byte("x"), 64<<10)))
	before := heapInUse()
	_, err = w.D.StartSession(ctx, "dev", api.StartSessionRequest{Name: "flood", Argv: []string{"true"}})
	grown := int64(heapInUse()) - int64(before)
	if !errors.Is(err, agentproto.ErrOutputTooLarge) {
		t.Errorf("preflight flooded with output: %v; want %v", err, agentproto.ErrOutputTooLarge)
	}
	if grown > 16<<20 {
		t.Errorf("heap grew by %d MiB reading a flooded preflight", grown>>20)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// A guest that fills its serial console while failing to boot: the error,
// and the row's last_error, carry a bounded tail of the console, read
// without loading the whole file.
func TestBootFailureConsoleTailIsBounded(t *testing.T) {
	w := newWorld(t)
	junk := bytes.Repeat([]byte(hostileguest.Escapes), (1<<20)/len(hostileguest.Escapes))
	w.Driver.SetConsole(func(out io.Writer) error {
		for range 32 { // 32 MiB with no newline
			if _, err := out.Write(junk); err != nil {
				return err
			}
		}
		return nil
	})
	w.Driver.Fail(vmmfake.StepAgent, vmmfake.ErrInjected)
	before := heapInUse()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	_, err := w.D.CreateVM(context.Background(), api.CreateVMRequest{Name: "dev", DiskBytes: 64 << 20}, nil)
	runtime.ReadMemStats(&m1)
	after := heapInUse()
	t.Logf("boot failure with a 32 MiB console: %.1f MiB allocated during create, live heap %.1f MiB -> %.1f MiB, error of %d bytes",
		mib(m1.TotalAlloc-m0.TotalAlloc), mib(before), mib(after), len(errString(err)))
	if err == nil {
		t.Fatal("a VM whose agent never answers was created")
	}
	if grown := int64(after) - int64(before); grown > 4<<20 {
		t.Errorf("live heap grew by %.1f MiB", float64(grown)/(1<<20))
	}
	if len(err.Error()) > vms.LastErrorMax+8 {
		t.Errorf("boot error of %d bytes; want at most %d", len(err.Error()), vms.LastErrorMax)
	}
	if !strings.Contains(err.Error(), "console:") || !strings.Contains(err.Error(), "\x1b[2J") {
		t.Errorf("boot error lost the console tail (or its bytes): %.200q", err.Error())
	}
}

// A running guest writing its console without end: the daemon cuts the
// log to its tail, and 'vm logs' streams only what is kept.
func TestConsoleLogTrimmedWhileRunning(t *testing.T) {
	w := newWorld(t)
	vm := w.create("dev")
	path := filepath.Join(vm.Dir, vms.ConsoleLog)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := bytes.Repeat([]byte("flood "), (1<<20)/6)
	for range 24 { // 24 MiB, three times the limit
		f.Write(chunk)
	}
	f.Write([]byte("\nlast line\n"))
	waitFor(t, "the console log trimmed", func() bool {
		var st syscall.Stat_t
		return syscall.Stat(path, &st) == nil && st.Blocks*512 <= vmm.LogLimit
	})
	var out bytes.Buffer
	if err := w.D.ConsoleLog(context.Background(), "dev", &out, false); err != nil {
		t.Fatal(err)
	}
	if out.Len() > vmm.LogLimit || !strings.HasSuffix(out.String(), "\nlast line\n") || bytes.Contains(out.Bytes(), []byte{0}) {
		t.Errorf("vm logs gave %d bytes ending %q; want the kept tail, no hole", out.Len(), out.String()[max(out.Len()-20, 0):])
	}
}
