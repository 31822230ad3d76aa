package doctor

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"banger/internal/config"
	"banger/internal/network"
	"banger/internal/paths"
)

// brokenEnv is a host where everything doctor looks at is wrong: no
// tools, no KVM, a bad config, a garbage SSH key, no daemon, no network,
// no DNS and no way to tell the free space. mut adjusts it further.
func brokenEnv(t *testing.T, st network.Status, mut func(*Env)) Env {
	t.Helper()
	dir := t.TempDir()
	layout := paths.New(filepath.Join(dir, "c"), filepath.Join(dir, "s"), filepath.Join(dir, "k"), filepath.Join(dir, "r"))
	writeKey(t, layout, []byte("not a key"), 0o600)
	cfg := config.Default()
	cfg.Warnings = []string{"config.toml:2: the web UI is reachable from the network"}
	e := Env{
		Config:             cfg,
		ConfigErr:          errors.New(`config.toml:1: unknown key "bridge_nmae"`),
		Layout:             layout,
		DaemonStatus:       func(context.Context) error { return errors.New("bangerd is not running") },
		LookPath:           func(string) (string, error) { return "", errors.New("not found") },
		KVMDevice:          filepath.Join(dir, "kvm"),
		Network:            func(context.Context, config.Config) network.Status { return st },
		ProbeDNS:           func(context.Context, string) error { return errors.New("no answer") },
		Resolvers:          func() []string { return nil },
		DefaultImageKernel: func(context.Context) (string, error) { return "", errors.New("daemon not answering") },
		FreeSpace:          func(string) (int64, error) { return 0, errors.New("permission denied") },
	}
	if mut != nil {
		mut(&e)
	}
	return e
}

// writeKey writes the SSH key doctor checks for layout's default config.
func writeKey(t *testing.T, layout paths.Layout, data []byte, mode os.FileMode) string {
	t.Helper()
	p := config.Default().SSHKey(layout.ConfigDir)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // WriteFile's mode is masked by umask
		t.Fatal(err)
	}
	return p
}

func ed25519PEM(t *testing.T) []byte {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block)
}

func pieces(state network.State) network.Status {
	var st network.Status
	for _, name := range []string{"bridge", "taps", "ip-forward", "nat", "resolved", "unit"} {
		st.Pieces = append(st.Pieces, network.PieceStatus{Name: name, State: state})
	}
	return st
}

// Every check that does not pass says what to do, whatever is broken.
func TestEveryProblemHasAFix(t *testing.T) {
	resolvedOnly := network.Status{Pieces: []network.PieceStatus{{Name: "resolved", State: network.StateOK}}}
	junkKernel := filepath.Join(t.TempDir(), "junk")
	os.WriteFile(junkKernel, []byte("junk"), 0o644)
	tests := []struct {
		name string
		st   network.Status
		mut  func(*Env)
	}{
		{"nothing reported about the network", network.Status{}, nil},
		{"every piece missing, no fixes given", pieces(network.StateMissing), nil},
		{"every piece wrong, no fixes given", pieces(network.StateWrong), nil},
		{"every piece unknown", pieces(network.StateUnknown), nil},
		{"every piece off", pieces(network.StateOff), nil},
		{"no resolv.conf servers", resolvedOnly, nil},
		{"resolver answers nothing", resolvedOnly, func(e *Env) {
			e.Resolvers = func() []string { return []string{"127.0.0.53:53"} }
		}},
		{"no VM runs yet", resolvedOnly, func(e *Env) {
			e.Resolvers = func() []string { return []string{"127.0.0.53:53"} }
			e.ProbeDNS = func(_ context.Context, server string) error {
				if server == "172.16.0.1:53" {
					return nil
				}
				return errors.New("no answer")
			}
		}},
		{"qemu", network.Status{}, func(e *Env) { e.Config.VMM = "qemu" }},
		{"firecracker_bin not executable", network.Status{}, func(e *Env) { e.Config.FirecrackerBin = junkKernel }},
		{"default image kernel is junk", network.Status{}, func(e *Env) {
			e.DefaultImageKernel = func(context.Context) (string, error) { return junkKernel, nil }
		}},
		{"no default image and no kernel ref", network.Status{}, func(e *Env) {
			e.DefaultImageKernel = func(context.Context) (string, error) { return "", nil }
		}},
		{"daemon not checked", network.Status{}, func(e *Env) { e.DaemonStatus = nil }},
		{"nearly full disk", network.Status{}, func(e *Env) {
			e.FreeSpace = func(string) (int64, error) { return 100 << 20, nil }
		}},
		{"unreadable SSH key", network.Status{}, func(e *Env) {
			p := e.Config.SSHKey(e.Layout.ConfigDir)
			os.Remove(p)
			os.Mkdir(p, 0o700)
		}},
		{"no SSH key", network.Status{}, func(e *Env) { os.Remove(e.Config.SSHKey(e.Layout.ConfigDir)) }},
		{"SSH key readable by others", network.Status{}, func(e *Env) { writeKey(t, e.Layout, ed25519PEM(t), 0o644) }},
		{"directories open to others", network.Status{}, func(e *Env) {
			for i, d := range e.Layout.Private() {
				os.MkdirAll(d, 0o700)
				os.Chmod(d, []os.FileMode{0o755, 0o777, 0o750, 0o711}[i])
			}
		}},
		{"state directory is a file", network.Status{}, func(e *Env) {
			os.MkdirAll(filepath.Dir(e.Layout.StateDir), 0o700)
			os.WriteFile(e.Layout.StateDir, nil, 0o600)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := Run(context.Background(), brokenEnv(t, tt.st, tt.mut))
			if len(rs) != len(Checks()) {
				t.Fatalf("%d results for %d checks", len(rs), len(Checks()))
			}
			for _, r := range rs {
				if r.Status == Pass {
					continue
				}
				if r.Fix == "" {
					t.Errorf("%s is %s without a fix: %q", r.Name, r.Status, r.Detail)
				}
				if r.Detail == "" {
					t.Errorf("%s is %s without saying why (fix %q)", r.Name, r.Status, r.Fix)
				}
			}
		})
	}
}

func TestSSHKeyCheck(t *testing.T) {
	good := ed25519PEM(t)
	tests := []struct {
		name   string
		setup  func(t *testing.T, layout paths.Layout) // nil: no key at all
		want   Status
		detail string
		fix    string
	}{
		{"missing", nil, Warn, "no SSH key", "banger daemon start"},
		{"private and valid", func(t *testing.T, l paths.Layout) { writeKey(t, l, good, 0o600) }, Pass, "id_ed25519", ""},
		{"readable by others", func(t *testing.T, l paths.Layout) { writeKey(t, l, good, 0o644) }, Warn, "has mode 644", "chmod 600"},
		{"garbage", func(t *testing.T, l paths.Layout) { writeKey(t, l, []byte("-----BEGIN nonsense"), 0o600) }, Fail, "not a usable unencrypted private key", "ssh_key_path"},
		{"empty", func(t *testing.T, l paths.Layout) { writeKey(t, l, nil, 0o600) }, Fail, "not a usable", "so banger creates one"},
		{"unreadable (a directory)", func(t *testing.T, l paths.Layout) {
			os.MkdirAll(config.Default().SSHKey(l.ConfigDir), 0o700)
		}, Fail, "cannot read", "chmod 600"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := fcEnv(t)
			if tt.setup != nil {
				tt.setup(t, e.Layout)
			}
			r := checkSSHKey(context.Background(), e)
			if r.Status != tt.want || !strings.Contains(r.Detail, tt.detail) || !strings.Contains(r.Fix, tt.fix) {
				t.Errorf("checkSSHKey = %+v, want %s with detail %q and fix %q", r, tt.want, tt.detail, tt.fix)
			}
		})
	}
}

func TestDiskCheckThresholds(t *testing.T) {
	tests := []struct {
		name   string
		free   int64
		err    error
		want   Status
		detail string
	}{
		{"plenty", 50 * gib, nil, Pass, "50.0 GiB free"},
		{"exactly 10 GiB", 10 * gib, nil, Pass, "10.0 GiB free"},
		{"just under 10 GiB", 10*gib - 1, nil, Warn, "a few images and VMs will fill it"},
		{"exactly 1 GiB", 1 * gib, nil, Warn, "1.0 GiB free"},
		{"under 1 GiB", gib / 2, nil, Fail, "need several GiB"},
		{"full", 0, nil, Fail, "0.0 GiB free"},
		{"statfs fails", 0, errors.New("permission denied"), Warn, "permission denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := fcEnv(t)
			var asked string
			e.FreeSpace = func(dir string) (int64, error) { asked = dir; return tt.free, tt.err }
			r := checkDisk(context.Background(), e)
			if r.Status != tt.want || !strings.Contains(r.Detail, tt.detail) {
				t.Errorf("checkDisk = %+v, want %s with %q", r, tt.want, tt.detail)
			}
			if r.Status != Pass && r.Fix == "" {
				t.Errorf("checkDisk %s without a fix", r.Status)
			}
			// The state dir does not exist yet: the nearest existing parent
			// is measured, as that is where it will be created.
			if want := filepath.Dir(e.Layout.StateDir); asked != want {
				t.Errorf("measured %s, want %s", asked, want)
			}
		})
	}
}

func TestDaemonCheck(t *testing.T) {
	tests := []struct {
		name   string
		status func(context.Context) error
		want   Status
		fix    string
	}{
		{"answers", func(context.Context) error { return nil }, Pass, ""},
		{"down", func(context.Context) error { return errors.New("connection refused") }, Warn, "banger daemon start"},
		{"not checked", nil, Warn, "banger daemon status"},
	}
	for _, tt := range tests {
		e := fcEnv(t)
		e.DaemonStatus = tt.status
		r := checkDaemon(context.Background(), e)
		if r.Status != tt.want || !strings.Contains(r.Fix, tt.fix) {
			t.Errorf("%s: checkDaemon = %+v, want %s with fix %q", tt.name, r, tt.want, tt.fix)
		}
	}
}

func TestPieceResultFillsInWhatStatusLeftOut(t *testing.T) {
	tests := []struct {
		p    network.PieceStatus
		want Status
		fix  string
	}{
		{network.PieceStatus{Name: "nat", State: network.StateOK, Detail: "ok"}, Pass, ""},
		{network.PieceStatus{Name: "nat", State: network.StateMissing}, Fail, "system setup"},
		{network.PieceStatus{Name: "nat", State: network.StateWrong}, Fail, "system setup"},
		{network.PieceStatus{Name: "nat", State: network.StateUnknown}, Warn, "system status"},
		{network.PieceStatus{Name: "nat", State: network.StateOff}, Warn, "system status"},
		{network.PieceStatus{Name: "nat", State: network.StateWrong, Detail: "d", Fix: "given fix"}, Fail, "given fix"},
	}
	for _, tt := range tests {
		r := pieceResult(tt.p)
		if r.Status != tt.want || !strings.Contains(r.Fix, tt.fix) || r.Detail == "" {
			t.Errorf("pieceResult(%+v) = %+v, want %s with fix %q", tt.p, r, tt.want, tt.fix)
		}
	}
}
