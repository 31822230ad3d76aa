package qemu

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"banger/internal/vmm"
)

// fakeQMP answers QMP commands from replies (command -> "return" value)
// on a unix socket, one connection at a time.
func fakeQMP(t *testing.T, replies map[string]string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "qmp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "qmp.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(`{"QMP": {"version": {}, "capabilities": []}}` + "\n"))
			sc := bufio.NewScanner(c)
			for sc.Scan() {
				var msg struct {
					Execute string `json:"execute"`
				}
				json.Unmarshal(sc.Bytes(), &msg)
				ret, ok := replies[msg.Execute]
				if msg.Execute == "qmp_capabilities" {
					ret, ok = "{}", true
				}
				// An event between replies must be skipped by the client.
				c.Write([]byte(`{"event": "RTC_CHANGE", "data": {}}` + "\n"))
				if !ok {
					c.Write([]byte(`{"error": {"class": "CommandNotFound", "desc": "no"}}` + "\n"))
					continue
				}
				var line bytes.Buffer // QMP sends one message per line
				json.Compact(&line, []byte(`{"return": `+ret+"}"))
				c.Write(append(line.Bytes(), '\n'))
			}
			c.Close()
		}
	}()
	return path
}

func TestMetrics(t *testing.T) {
	sock := fakeQMP(t, map[string]string{
		"query-blockstats": `[
			{"device": "rootfs", "stats": {"rd_bytes": 4096, "wr_bytes": 512, "rd_operations": 8, "wr_operations": 1, "flush_operations": 2}},
			{"device": "work", "stats": {"rd_bytes": 1, "wr_bytes": 2, "rd_operations": 3, "wr_operations": 4, "flush_operations": 5}},
			{"device": "", "node-name": "#block123", "stats": {"rd_bytes": 99}}]`,
		"query-status": `{"status": "running", "running": true}`,
		"query-stats":  `[{"provider": "kvm", "stats": [{"name": "exits", "value": 42}, {"name": "halt_poll_ns", "value": [1, 2]}]}]`,
	})
	st, err := vmm.ProcStartTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	h := &vmm.Handle{Driver: "qemu", PID: os.Getpid(), StartTime: st, Accel: "kvm", Sockets: map[string]string{"qmp": sock}}
	got, err := New(Options{}).Metrics(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	want := vmm.Metrics{
		Block: []vmm.BlockMetrics{
			{Device: "rootfs", ReadBytes: 4096, WriteBytes: 512, ReadOps: 8, WriteOps: 1, FlushOps: 2},
			{Device: "work", ReadBytes: 1, WriteBytes: 2, ReadOps: 3, WriteOps: 4, FlushOps: 5},
		},
		Extra: map[string]any{"status": "running", "kvm": map[string]any{"exits": uint64(42)}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Metrics (-want +got):\n%s", diff)
	}

	h.Accel = "tcg" // no KVM counters to ask for
	got, err = New(Options{}).Metrics(context.Background(), h)
	if err != nil || got.Extra["kvm"] != nil {
		t.Errorf("Metrics under tcg = %+v, %v; want no kvm counters", got, err)
	}
	if _, err := New(Options{}).Metrics(context.Background(), &vmm.Handle{PID: os.Getpid(), StartTime: st + 1}); err == nil {
		t.Error("Metrics of a handle whose process is gone succeeded")
	}
}
