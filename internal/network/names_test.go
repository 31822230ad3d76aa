package network

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"banger/internal/config"
)

func TestTapNames(t *testing.T) {
	for _, tc := range []struct {
		bridge string
		i      int
		want   string
	}{
		{"banger0", 0, "banger0-tap0"},
		{"banger0", 255, "banger0-tap255"},
		{"averylongbridge", 255, "averylon-tap255"},
	} {
		got := TapName(tc.bridge, tc.i)
		if got != tc.want || len(got) > ifNameMax {
			t.Errorf("TapName(%s, %d) = %q, want %q (at most 15 bytes)", tc.bridge, tc.i, got, tc.want)
		}
		if i, ok := tapIndex(tc.bridge, got); !ok || i != tc.i {
			t.Errorf("tapIndex(%s, %s) = %d, %v", tc.bridge, got, i, ok)
		}
	}
	for _, name := range []string{"banger0", "banger0-tap", "banger0-tap01", "banger0-tapx", "other-tap1", "banger0-tap-1"} {
		if _, ok := tapIndex("banger0", name); ok {
			t.Errorf("tapIndex(banger0, %s) = ok, want not a tap of the pool", name)
		}
	}
}

func TestMAC(t *testing.T) {
	a := netip.MustParseAddr("172.16.0.2")
	mac := MAC(a)
	if mac.String() != "02:ba:ac:10:00:02" {
		t.Errorf("MAC(%s) = %s", a, mac)
	}
	if mac[0]&0x02 == 0 || mac[0]&0x01 != 0 {
		t.Errorf("MAC %s is not locally administered unicast", mac)
	}
	if back, err := AddrFromMAC(mac); err != nil || back != a {
		t.Errorf("AddrFromMAC(%s) = %s, %v", mac, back, err)
	}
	if _, err := AddrFromMAC(net.HardwareAddr{0x52, 0x54, 0, 1, 2, 3}); err == nil {
		t.Error("AddrFromMAC accepted a QEMU MAC")
	}
}

func TestKernelArgs(t *testing.T) {
	cfg := config.Default()
	cfg.DefaultDNS = []netip.Addr{netip.MustParseAddr("1.1.1.1"), netip.MustParseAddr("9.9.9.9")}
	got := strings.Join(KernelArgs(netip.MustParseAddr("172.16.0.2"), cfg), " ")
	if want := "banger.ip=172.16.0.2/24 banger.gw=172.16.0.1 banger.dns=1.1.1.1,9.9.9.9"; got != want {
		t.Errorf("KernelArgs = %q, want %q", got, want)
	}
}

func TestResolvectlOutput(t *testing.T) {
	for out, want := range map[string]string{
		"Link 5 (banger0): 172.16.0.1\n": "172.16.0.1",
		"Link 5 (banger0): ~vm\n":        "~vm",
		"Link 5 (banger0): no\n":         "no",
		"Link 5 (banger0):\n":            "",
	} {
		if got := linkValues(out); got != want {
			t.Errorf("linkValues(%q) = %q, want %q", out, got, want)
		}
	}
}

func TestUnitContent(t *testing.T) {
	u := unitContent("/home/a b/.local/bin/banger", testSpec())
	for _, want := range []string{`ExecStart="/home/a b/.local/bin/banger" system setup --boot`, "After=network-pre.target systemd-resolved.service", "WantedBy=multi-user.target", "Type=oneshot"} {
		if !strings.Contains(u, want) {
			t.Errorf("unit lacks %q:\n%s", want, u)
		}
	}
}
