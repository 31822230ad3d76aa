package guestagent

import (
	"banger/internal/tarcopy"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func TestParseCmdline(t *testing.T) {
	got, err := ParseCmdline("console=ttyS0 reboot=k banger.init=agent banger.hostname=dev1 " +
		"banger.ip=172.16.0.5/24 banger.gw=172.16.0.1 banger.dns=1.1.1.1,2606:4700:4700::1111 banger.work=/dev/vdb root=/dev/vda rw quiet\n")
	if err != nil {
		t.Fatal(err)
	}
	want := Cmdline{Init: InitAgent, Hostname: "dev1", Work: "/dev/vdb", Addr: netip.MustParsePrefix("172.16.0.5/24"),
		Gateway: netip.MustParseAddr("172.16.0.1"),
		DNS:     []netip.Addr{netip.MustParseAddr("1.1.1.1"), netip.MustParseAddr("2606:4700:4700::1111")}}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
		cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("ParseCmdline (-want +got):\n%s", diff)
	}
	got, err = ParseCmdline("banger.ip=300.1.1.1/24 banger.init=maybe banger.hostname=ok")
	if err == nil || !strings.Contains(err.Error(), "banger.ip") || !strings.Contains(err.Error(), "banger.init") {
		t.Errorf("err = %v, want both bad values named", err)
	}
	if got.Hostname != "ok" {
		t.Errorf("good values are dropped along with bad ones: %+v", got)
	}
}

func TestEtcFiles(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.Symlink("../run/systemd/resolve/stub-resolv.conf", filepath.Join(root, "etc", "resolv.conf"))
	if err := writeResolvConf(root, []netip.Addr{netip.MustParseAddr("9.9.9.9"), netip.MustParseAddr("1.1.1.1")}); err != nil {
		t.Fatal(err)
	}
	if err := writeHosts(root, "dev1", netip.MustParseAddr("172.16.0.5")); err != nil {
		t.Fatal(err)
	}
	resolv, _ := os.ReadFile(filepath.Join(root, "etc", "resolv.conf"))
	if !strings.HasSuffix(string(resolv), "nameserver 9.9.9.9\nnameserver 1.1.1.1\n") {
		t.Errorf("resolv.conf = %q", resolv)
	}
	hosts, _ := os.ReadFile(filepath.Join(root, "etc", "hosts"))
	if !strings.Contains(string(hosts), "127.0.0.1\tlocalhost\n") || !strings.Contains(string(hosts), "172.16.0.5\tdev1\n") {
		t.Errorf("hosts = %q", hosts)
	}
}

func TestModulesFromImageListsWithDependencies(t *testing.T) {
	root := t.TempDir()
	write := func(name, content string) {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(content), 0o644)
	}
	write("etc/modules-load.d/banger.conf", "# comment\nvirtio-net\n; also a comment\noverlay\n")
	write("etc/modules", "vsock_loopback\nvirtio_net\n")
	write("lib/modules/6.1.0/modules.dep",
		"kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz kernel/net/core/failover.ko.xz\n"+
			"kernel/drivers/net/net_failover.ko.xz: kernel/net/core/failover.ko.xz\n"+
			"kernel/net/core/failover.ko.xz:\n"+
			"kernel/fs/overlayfs/overlay.ko.xz:\n")
	write("lib/modules/6.1.0/modules.builtin", "kernel/net/vmw_vsock/vsock_loopback.ko\n")

	names := listedModules(root)
	if want := []string{"virtio-net", "overlay", "vsock_loopback"}; !slices.Equal(names, want) {
		t.Errorf("listed modules = %v, want %v", names, want)
	}
	md, err := parseModulesDep(filepath.Join(root, "lib/modules/6.1.0/modules.dep"))
	if err != nil {
		t.Fatal(err)
	}
	order, err := md.loadOrder("virtio-net")
	want := []string{"kernel/net/core/failover.ko.xz", "kernel/drivers/net/net_failover.ko.xz", "kernel/drivers/net/virtio_net.ko.xz"}
	if err != nil || !slices.Equal(order, want) {
		t.Errorf("load order = %v, %v; want %v", order, err, want)
	}
	if !builtin(filepath.Join(root, "lib/modules/6.1.0"), "vsock-loopback") {
		t.Error("vsock_loopback is built in")
	}
	if _, err := md.loadOrder("nope"); err == nil {
		t.Error("an unknown module resolved")
	}
}

func TestFstab(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fstab")
	os.WriteFile(p, []byte("# <fs> <mp> <type> <opts>\n/dev/vda / ext4 rw 0 1\n/dev/vdb /root ext4 defaults,noatime 0 2\n"+
		"LABEL=data /srv/my\\040data ext4 ro,nosuid,x-systemd.automount 0 2\n/dev/vdc none swap sw 0 0\n/dev/vdd /mnt xfs noauto 0 0\n"), 0o644)
	got := parseFstab(p)
	want := []fstabEntry{{"/dev/vdb", "/root", "ext4", "defaults,noatime"}, {"LABEL=data", "/srv/my data", "ext4", "ro,nosuid,x-systemd.automount"}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(fstabEntry{})); diff != "" {
		t.Errorf("parseFstab (-want +got):\n%s", diff)
	}
	flags, data := mountOptions("ro,nosuid,noatime,x-systemd.automount,errors=remount-ro,defaults")
	if flags != unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NOATIME || data != "errors=remount-ro" {
		t.Errorf("mountOptions = %#x %q", flags, data)
	}
	if resolveSpec("LABEL=data") != "/dev/disk/by-label/data" {
		t.Errorf("resolveSpec(LABEL=data) = %q", resolveSpec("LABEL=data"))
	}
}

func TestParseHexAddr(t *testing.T) {
	for in, want := range map[string]string{
		"0100007F:1F90":                         "127.0.0.1:8080",
		"00000000000000000000000001000000:0016": "[::1]:22",
		"0000000000000000FFFF00000100007F:0035": "[::ffff:127.0.0.1]:53",
	} {
		ip, port, err := parseHexAddr(in)
		if err != nil {
			t.Fatal(err)
		}
		got := netip.AddrPortFrom(ip, uint16(port)).String()
		if got != want {
			t.Errorf("parseHexAddr(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestSmallParsers(t *testing.T) {
	for in, want := range map[string]unix.Signal{"TERM": unix.SIGTERM, "sigint": unix.SIGINT, "9": unix.SIGKILL, "HUP": unix.SIGHUP} {
		if got, err := parseSignal(in); err != nil || got != want {
			t.Errorf("parseSignal(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := parseSignal("BOGUS"); err == nil {
		t.Error("parseSignal accepted BOGUS")
	}
	for in, ok := range map[string]bool{"a/b": true, "./a": true, "a/../b": false, "/a": false, "..": false} {
		if _, err := tarcopy.CleanName(in); (err == nil) != ok {
			t.Errorf("tarcopy.CleanName(%q) = %v, want ok=%v", in, err, ok)
		}
	}
	for _, tt := range []struct {
		name, target string
		ok           bool
	}{{"a/l", "../b", true}, {"a/l", "../../b", false}, {"l", "/etc", false}, {"l", "x/../../y", false}, {"a/b/l", "../../c", true}} {
		if err := tarcopy.CheckLink(tt.name, tt.target); (err == nil) != tt.ok {
			t.Errorf("tarcopy.CheckLink(%q, %q) = %v, want ok=%v", tt.name, tt.target, err, tt.ok)
		}
	}
	env := processEnv(account{Name: "u", Home: "/home/u", Shell: "/bin/sh"}, "xterm", []string{"PATH=/opt/bin", "X=1=2", "bad"})
	if !slices.Contains(env, "PATH=/opt/bin") || slices.Contains(env, "PATH="+defaultPath) || !slices.Contains(env, "X=1=2") || !slices.Contains(env, "TERM=xterm") {
		t.Errorf("processEnv = %v", env)
	}
	if _, err := parseListen([]string{"vsock:1024", "serial:org.banger.agent", "unix:/tmp/s"}); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"vsock:x", "tcp:1", "unix:", "serial"} {
		if _, err := parseListen([]string{bad}); err == nil {
			t.Errorf("parseListen accepted %q", bad)
		}
	}
}

func TestSyncInjectedKeysMergesIntoRootsKeys(t *testing.T) {
	dir := t.TempDir()
	p := Paths{ConfigDir: filepath.Join(dir, "etc"), Home: filepath.Join(dir, "root")}
	os.MkdirAll(filepath.Join(p.Home, ".ssh"), 0o700)
	existing := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@laptop"
	os.WriteFile(p.rootAuthorizedKeys(), []byte(existing), 0o600)
	os.MkdirAll(p.ConfigDir, 0o755)
	injected := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEn3Bm0yWnL4xJ2rXUAnTBtyhHBz8CWpTQgXDk2EGq2p banger\n" + existing + "\n"
	os.WriteFile(p.injectedKeyFile(), []byte(injected), 0o644)
	for range 2 {
		if err := syncInjectedKeys(p); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := os.ReadFile(p.rootAuthorizedKeys())
	want := existing + "\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEn3Bm0yWnL4xJ2rXUAnTBtyhHBz8CWpTQgXDk2EGq2p banger\n"
	if string(got) != want {
		t.Errorf("authorized_keys = %q, want %q", got, want)
	}
}
