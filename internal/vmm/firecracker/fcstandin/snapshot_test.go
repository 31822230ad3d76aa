package fcstandin

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"banger/internal/agentproto"
)

// bootRig is a rig with a booted VM that has a network interface.
func bootRig(t *testing.T) *rig {
	t.Helper()
	r := newRig(t, Config{})
	r.configure()
	r.ok("PUT", "/network-interfaces/eth0", `{"iface_id":"eth0","host_dev_name":"tapA"}`)
	r.ok("PUT", "/actions", `{"action_type":"InstanceStart"}`)
	return r
}

func (r *rig) state() string {
	r.t.Helper()
	var ii map[string]string
	json.Unmarshal([]byte(r.ok("GET", "/", "")), &ii)
	return ii["state"]
}

// snapshot pauses r's VM and snapshots it into dir.
func (r *rig) snapshot(dir string) (state, mem string) {
	r.t.Helper()
	state, mem = filepath.Join(dir, "vmstate"), filepath.Join(dir, "memory")
	r.ok("PATCH", "/vm", `{"state":"Paused"}`)
	r.ok("PUT", "/snapshot/create", `{"snapshot_path":"`+state+`","mem_file_path":"`+mem+`"}`)
	return state, mem
}

func TestPauseAndCreate(t *testing.T) {
	r := bootRig(t)
	dir := t.TempDir()
	body := `{"snapshot_path":"` + filepath.Join(dir, "s") + `","mem_file_path":"` + filepath.Join(dir, "m") + `"}`
	r.fault("PUT", "/snapshot/create", body, msgCreateRunning)
	r.ok("PATCH", "/vm", `{"state":"Paused"}`)
	r.ok("PATCH", "/vm", `{"state":"Paused"}`) // idempotent, as Firecracker's vCPUs
	if got := r.state(); got != "Paused" {
		t.Errorf("state after pause = %q, want Paused", got)
	}
	r.fault("PUT", "/snapshot/create", `{"snapshot_path":"`+filepath.Join(dir, "s")+`","mem_file_path":"`+filepath.Join(dir, "m")+`","snapshot_type":"Diff"}`, msgDiffNoDirty)
	r.fault("PUT", "/snapshot/create", `{"snapshot_path":"`+filepath.Join(dir, "no", "s")+`","mem_file_path":"`+filepath.Join(dir, "m")+`"}`,
		"Create snapshot error: Cannot perform open on the snapshot backing file: No such file or directory (os error 2)")
	r.fault("PATCH", "/vm", `{"state":"Stopped"}`, deser+"unknown variant `Stopped`, expected `Paused` or `Resumed` at line 1 column 18.")
	r.ok("PUT", "/snapshot/create", body)
	if fi, err := os.Stat(filepath.Join(dir, "m")); err != nil || fi.Size() != 128<<20 {
		t.Errorf("memory file = %v, %v; want the guest's 128 MiB", fi, err)
	}
	if got := r.state(); got != "Paused" {
		t.Errorf("state after a snapshot = %q, want Paused", got)
	}
	r.ok("PATCH", "/vm", `{"state":"Resumed"}`)
	if got := r.state(); got != "Running" {
		t.Errorf("state after resume = %q, want Running", got)
	}
	r.fault("PUT", "/snapshot/load", `{"snapshot_path":"x","mem_backend":{"backend_type":"File","backend_path":"y"}}`, msgPostBoot)
}

// TestLoadRefusals: what Firecracker refuses before restoring anything
// leaves the process serving; what fails during the restore ends it.
func TestLoadRefusals(t *testing.T) {
	src := bootRig(t)
	state, mem := src.snapshot(t.TempDir())
	load := func(extra string) string {
		return `{"snapshot_path":"` + state + `"` + extra + `}`
	}
	file := `,"mem_backend":{"backend_type":"File","backend_path":"` + mem + `"}`
	missing := filepath.Join(t.TempDir(), "missing")
	for _, tc := range []struct {
		name, body, want string
		exits            bool
	}{
		{"both memory fields", load(file + `,"mem_file_path":"` + mem + `"`), deser + msgMemTooMany + ".", false},
		{"no memory field", load(""), deser + msgMemMissing + ".", false},
		{"missing state file", `{"snapshot_path":"` + missing + `"` + file + `}`,
			msgLoadFailed + "Failed to get snapshot state from file: Failed to open snapshot file: No such file or directory (os error 2)", true},
		{"missing memory file", load(`,"mem_file_path":"` + missing + `"`),
			msgLoadFailed + "Failed to load guest memory: Error creating guest memory from file: Failed to load guest memory: No such file or directory (os error 2)", true},
		{"unknown interface", load(file + `,"network_overrides":[{"iface_id":"eth9","host_dev_name":"tapB"}]`),
			msgLoadFailed + "Failed to get snapshot state from file: Unknown Network Device.", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, Config{})
			r.fault("PUT", "/snapshot/load", tc.body, tc.want)
			select {
			case code := <-r.exits:
				if !tc.exits {
					t.Errorf("the stand-in exited (%d) after a refusal Firecracker survives", code)
				}
			default:
				if tc.exits {
					t.Error("the stand-in kept running after a failed restore; Firecracker exits")
				}
			}
		})
	}

	r := newRig(t, Config{})
	body := load(`,"mem_backend":{"backend_type":"File"}}`)
	r.fault("PUT", "/snapshot/load", body[:len(body)-1], deser+"missing field `backend_path` at line 1 column "+strconv.Itoa(len(body)-2)+".")

	// After any boot-specific configuration, a load is refused.
	r.ok("PUT", "/logger", `{"log_path":"`+r.path("log")+`"}`)
	r.ok("PUT", "/machine-config", `{"vcpu_count":1,"mem_size_mib":128}`)
	r.fault("PUT", "/snapshot/load", load(file), msgLoadAfterCfg)
}

// TestLoadRestoresGuest: a loaded VM has its devices from the snapshot
// with the overrides, is paused, and its guest has the memory it had.
func TestLoadRestoresGuest(t *testing.T) {
	src := bootRig(t)
	if err := os.WriteFile(filepath.Join(src.s.ram, "mark"), []byte("before the save"), 0o600); err != nil {
		t.Fatal(err)
	}
	state, mem := src.snapshot(t.TempDir())

	r := newRig(t, Config{})
	r.ok("PUT", "/logger", `{"log_path":"`+r.path("log")+`"}`) // allowed before a load
	sock := r.path("new.sock")
	r.ok("PUT", "/snapshot/load", `{"snapshot_path":"`+state+`","mem_backend":{"backend_type":"File","backend_path":"`+mem+`"},`+
		`"network_overrides":[{"iface_id":"eth0","host_dev_name":"tapB"}],"vsock_override":{"uds_path":"`+sock+`"},"resume_vm":false}`)
	if got := r.state(); got != "Paused" {
		t.Errorf("state after a load without resume_vm = %q, want Paused", got)
	}
	var cfg map[string]any
	json.Unmarshal([]byte(r.ok("GET", "/vm/config", "")), &cfg)
	if _, ok := cfg["boot-source"]; ok {
		t.Errorf("GET /vm/config after a load has a boot-source: %v", cfg)
	}
	got, _ := json.Marshal([]any{cfg["machine-config"], cfg["drives"], cfg["network-interfaces"], cfg["vsock"]})
	want := `[{"mem_size_mib":128,"track_dirty_pages":false,"vcpu_count":1},` +
		`[{"drive_id":"rootfs","is_read_only":false,"is_root_device":true,"path_on_host":"` + src.path("rootfs.ext4") + `"}],` +
		`[{"host_dev_name":"tapB","iface_id":"eth0"}],{"guest_cid":3,"uds_path":"` + sock + `"}]`
	if string(got) != want {
		t.Errorf("GET /vm/config after a load:\n got %s\nwant %s", got, want)
	}
	if data, err := os.ReadFile(filepath.Join(r.s.ram, "mark")); string(data) != "before the save" {
		t.Errorf("the restored guest's memory has mark %q (%v), want what was saved", data, err)
	}
	r.fault("PUT", "/snapshot/load", `{"snapshot_path":"`+state+`","mem_file_path":"`+mem+`"}`, msgPostBoot)

	// Paused: the guest does not answer; resumed, its agent does.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	conn, err := agentproto.DialHybridVsock(ctx, sock, agentproto.DefaultVsockPort)
	cancel()
	if err == nil {
		conn.Close()
		t.Error("a paused guest accepted a vsock connection")
	}
	r.ok("PATCH", "/vm", `{"state":"Resumed"}`)
	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err = agentproto.DialHybridVsock(ctx, sock, agentproto.DefaultVsockPort)
	if err != nil {
		t.Fatal(err)
	}
	c, err := agentproto.NewClient(ctx, conn)
	if err != nil {
		t.Fatalf("agent hello after resume: %v", err)
	}
	c.Close()
}

// TestCreateResetsVsock: taking a snapshot closes open vsock connections.
func TestCreateResetsVsock(t *testing.T) {
	r := bootRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := agentproto.DialHybridVsock(ctx, r.path("v.sock"), agentproto.DefaultVsockPort)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r.snapshot(t.TempDir())
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil || os.IsTimeout(err) {
		t.Errorf("read on a connection across a snapshot = %v, want it closed", err)
	}
}
