package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"banger/internal/vmm"
)

// fakeEnv makes the test binary stand in for qemu-system-x86_64 (see
// TestMain): its value is how the fake behaves.
const fakeEnv = "BANGER_FAKE_QEMU"

// fakeVersionLine is what the fake prints for --version.
const fakeVersionLine = "QEMU emulator version 9.9.9 (fake 1)"

// argsFile is where the fake records the command line it was given.
const argsFile = "fake-args"

// linkFile is where the fake records the link state set_link set.
const linkFile = "fake-link"

// childPIDFile is where the fake records its daemonized child's pid for
// the test; Create does not know of it and leaves it alone.
const childPIDFile = "fake-child.pid"

func TestMain(m *testing.M) {
	if os.Getenv(fakeEnv) != "" && len(os.Args) == 2 && os.Args[1] == "--version" {
		fmt.Println(fakeVersionLine)
		os.Exit(0)
	}
	switch mode := os.Getenv(fakeEnv); mode {
	case "":
		os.Exit(m.Run())
	case "vm":
		fakeVM()
	default:
		fakeQEMU(mode)
	}
}

// fakeQEMU does what qemu -daemonize does: it starts the VM process in a
// session of its own, writes its pid file and exits once the VM is up.
// Modes: "ok"; "hang" never exits (Create's ctx must end it); "badpid"
// writes a pid file that cannot be read.
func fakeQEMU(mode string) {
	pidPath := flagValue(os.Args[1:], "-pidfile")
	rt := filepath.Dir(pidPath)
	os.WriteFile(filepath.Join(rt, argsFile), []byte(strings.Join(os.Args[1:], "\x00")), 0o644)
	// The child has QEMU's command line: SaveState reads the device
	// model from it.
	child := exec.Command(os.Args[0], os.Args[1:]...)
	child.Env = append(os.Environ(), fakeEnv+"=vm")
	child.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := child.Start(); err != nil {
		os.Exit(1)
	}
	pid := strconv.Itoa(child.Process.Pid)
	os.WriteFile(filepath.Join(rt, childPIDFile), []byte(pid), 0o644)
	if mode == "badpid" {
		pid = "not a pid"
	}
	os.WriteFile(pidPath, []byte(pid+"\n"), 0o644)
	if mode == "hang" {
		select {}
	}
	for i := 0; i < 100; i++ { // like QEMU, report in once QMP listens
		if c, err := net.Dial("unix", filepath.Join(rt, qmpSocket)); err == nil {
			c.Close()
			os.Exit(0)
		}
		time.Sleep(50 * time.Millisecond)
	}
	os.Exit(1)
}

// fakeVM answers QMP until asked to quit, for a minute at most.
func fakeVM() {
	time.AfterFunc(time.Minute, func() { os.Exit(2) })
	rt := filepath.Dir(flagValue(os.Args[1:], "-pidfile"))
	ln, err := net.Listen("unix", filepath.Join(rt, qmpSocket))
	if err != nil {
		os.Exit(1)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			os.Exit(1)
		}
		c.Write([]byte(`{"QMP": {"version": {}, "capabilities": []}}` + "\n"))
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			var msg struct {
				Execute   string         `json:"execute"`
				Arguments map[string]any `json:"arguments"`
			}
			json.Unmarshal(sc.Bytes(), &msg)
			switch msg.Execute {
			case "query-migrate":
				c.Write([]byte(`{"return": {"status": "completed"}}` + "\n"))
				continue
			case "query-version":
				c.Write([]byte(`{"return": {"qemu": {"major": 9, "minor": 9, "micro": 9}, "package": "fake 1"}}` + "\n"))
				continue
			case "set_link":
				// As QEMU: the name must be a netdev (or device) id.
				name, _ := msg.Arguments["name"].(string)
				up, ok := msg.Arguments["up"].(bool)
				if !ok || !slices.ContainsFunc(values(os.Args[1:], "-netdev"), func(v string) bool { return strings.Contains(v, ",id="+name+",") }) {
					c.Write([]byte(`{"error": {"class": "DeviceNotFound", "desc": "Device '` + name + `' not found"}}` + "\n"))
					continue
				}
				os.WriteFile(filepath.Join(rt, linkFile), []byte(strconv.FormatBool(up)), 0o644)
			case "migrate":
				// Run the exec: command as QEMU does, feeding it a stream.
				uri := msg.Arguments["uri"].(string)
				cmd := exec.Command("/bin/sh", "-c", strings.TrimPrefix(uri, "exec:"))
				cmd.Stdin = strings.NewReader("fake migration stream")
				cmd.Run()
			}
			c.Write([]byte(`{"return": {}}` + "\n"))
			if msg.Execute == "quit" {
				os.Exit(0)
			}
		}
		c.Close()
	}
}

func flagValue(args []string, flag string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			return args[i+1]
		}
	}
	return ""
}

// fakeDriver returns a driver running the fake in mode, and a spec whose
// files exist.
func fakeDriver(t *testing.T, mode string) (*Driver, vmm.Spec) {
	t.Helper()
	t.Setenv(fakeEnv, mode)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rt, err := os.MkdirTemp("", "bgq") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rt) })
	dir := t.TempDir()
	for _, f := range []string{"vmlinuz", "rootfs.ext4"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	spec := vmm.Spec{
		Name: "fake", RuntimeDir: rt, ConsoleLog: filepath.Join(dir, "console.log"),
		CPUs: 1, MemoryMiB: 128, Kernel: filepath.Join(dir, "vmlinuz"),
		Disks: []vmm.Disk{{ID: "rootfs", Path: filepath.Join(dir, "rootfs.ext4")}},
	}
	return New(Options{Binary: self, Accel: "tcg"}), spec
}

// fakeChild returns the handle of the VM process the fake started and
// kills it when the test ends, so a failing test leaks nothing.
func fakeChild(t *testing.T, rt string) *vmm.Handle {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(rt, childPIDFile))
	if err != nil {
		t.Fatalf("the fake qemu did not start its vm process: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	st, err := vmm.ProcStartTime(pid)
	if err != nil {
		st = 0 // already gone
	}
	h := &vmm.Handle{PID: pid, StartTime: st}
	t.Cleanup(func() { vmm.Signal(h, syscall.SIGKILL) })
	return h
}

func TestCreateWithFake(t *testing.T) {
	d, spec := fakeDriver(t, "ok")
	h, err := d.Create(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	child := fakeChild(t, spec.RuntimeDir)
	if h.PID != child.PID || !vmm.Alive(h.PID, h.StartTime) {
		t.Fatalf("handle pid %d (alive %v), want the running vm process %d", h.PID, vmm.Alive(h.PID, h.StartTime), child.PID)
	}
	if h.Accel != "tcg" || h.Sockets["qmp"] != filepath.Join(spec.RuntimeDir, qmpSocket) {
		t.Errorf("handle = %+v", h)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Kill(ctx, h); err != nil {
		t.Fatal(err)
	}
}

// A Create that fails must not leave the daemonized VM process running:
// the caller has no handle to end it with.
func TestCreateFailureLeavesNothingRunning(t *testing.T) {
	tests := []struct {
		mode        string
		cancelEarly bool
		wantErr     string
	}{
		// The ctx ends while qemu's parent waits: it is killed, the
		// already daemonized child found by the pid file.
		{mode: "hang", cancelEarly: true, wantErr: "signal: killed"},
		// The pid file cannot be read: the child is found by the pid
		// file path on its command line.
		{mode: "badpid", wantErr: "parsing qemu pid file"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			d, spec := fakeDriver(t, tt.mode)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if tt.cancelEarly {
				go cancelOnFile(ctx, cancel, filepath.Join(spec.RuntimeDir, pidFile))
			}
			_, err := d.Create(ctx, spec)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Create = %v, want an error with %q", err, tt.wantErr)
			}
			child := fakeChild(t, spec.RuntimeDir)
			if vmm.Alive(child.PID, child.StartTime) {
				t.Errorf("vm process %d still runs after Create failed", child.PID)
			}
			for _, f := range []string{pidFile, qmpSocket} {
				if _, err := os.Stat(filepath.Join(spec.RuntimeDir, f)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s left in the runtime dir", f)
				}
			}
		})
	}
}

// cancelOnFile cancels once path exists: the fake has daemonized.
func cancelOnFile(ctx context.Context, cancel func(), path string) {
	for ctx.Err() == nil {
		if _, err := os.Stat(path); err == nil {
			cancel()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
