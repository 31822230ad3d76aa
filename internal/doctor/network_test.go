package doctor

import (
	"context"
	"errors"
	"strings"
	"testing"

	"banger/internal/config"
	"banger/internal/network"
	"banger/internal/paths"
)

// netEnv is an Env whose network and DNS answers are canned.
func netEnv(st network.Status, probe map[string]error) Env {
	return Env{
		Config:   config.Default(),
		Layout:   paths.New("/c", "/s", "/k", "/r"),
		LookPath: func(string) (string, error) { return "", errors.New("not found") },
		Network:  func(context.Context, config.Config) network.Status { return st },
		ProbeDNS: func(_ context.Context, server string) error {
			if err, ok := probe[server]; ok {
				return err
			}
			return errors.New("no answer")
		},
		Resolvers: func() []string { return []string{"127.0.0.53:53"} },
	}
}

func resultsByName(rs []Result) map[string]Result {
	out := map[string]Result{}
	for _, r := range rs {
		out[r.Name] = r
	}
	return out
}

func TestNetworkChecksNameTheMissingPieceAndTheFix(t *testing.T) {
	st := network.Status{Pieces: []network.PieceStatus{
		{Name: "bridge", State: network.StateOK, Detail: "bridge banger0 has 172.16.0.1/24"},
		{Name: "taps", State: network.StateMissing, Detail: "none of the 8 taps exists", Fix: network.SetupCommand},
		{Name: "ip-forward", State: network.StateWrong, Detail: "IPv4 forwarding is off", Fix: network.SetupCommand},
		{Name: "nat", State: network.StateUnknown, Detail: "reading nftables needs root", Fix: "sudo banger system status"},
		{Name: "resolved", State: network.StateOff, Detail: "systemd-resolved is not running", Fix: "point your resolver"},
		{Name: "unit", State: network.StateMissing, Detail: "banger-network.service is not installed, so the network is gone after a reboot"},
	}}
	got := resultsByName(Run(context.Background(), netEnv(st, nil)))
	for name, want := range map[string]Status{"bridge": Pass, "taps": Fail, "ip-forward": Fail, "nat": Warn, "vm-dns": Warn, "boot-unit": Warn} {
		r := got[name]
		if r.Status != want {
			t.Errorf("%s = %+v, want %s", name, r, want)
		}
		if want != Pass && r.Fix == "" {
			t.Errorf("%s has no fix", name)
		}
	}
	for _, name := range []string{"taps", "boot-unit"} {
		if !strings.Contains(got[name].Fix, "system setup") {
			t.Errorf("%s fix = %q", name, got[name].Fix)
		}
	}
}

func TestVMDNSCheck(t *testing.T) {
	resolved := network.PieceStatus{Name: "resolved", State: network.StateOK}
	for _, tc := range []struct {
		name    string
		carrier bool
		probe   map[string]error
		want    Status
		detail  string
	}{
		{"resolves", true, map[string]error{"127.0.0.53:53": nil}, Pass, "names resolve on the host"},
		{"daemon not answering", true, nil, Warn, "does not answer on 172.16.0.1:53"},
		{"no VM running yet", false, map[string]error{"172.16.0.1:53": nil}, Warn, "no VM runs"},
		{"resolver not routing", true, map[string]error{"172.16.0.1:53": nil}, Fail, "do not reach banger's DNS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := network.Status{Pieces: []network.PieceStatus{resolved}, BridgeCarrier: tc.carrier}
			r := resultsByName(Run(context.Background(), netEnv(st, tc.probe)))["vm-dns"]
			if r.Status != tc.want || !strings.Contains(r.Detail, tc.detail) {
				t.Errorf("vm-dns = %+v, want %s with %q", r, tc.want, tc.detail)
			}
		})
	}
}
