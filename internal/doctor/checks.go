package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"banger/internal/network"
)

func checkConfig(ctx context.Context, e *Env) Result {
	if e.ConfigErr != nil {
		return fail(e.ConfigErr.Error(), "edit "+e.Layout.ConfigFile+" as the message says; 'banger config show' prints the effective config")
	}
	if len(e.Config.Warnings) > 0 {
		return warn(strings.Join(e.Config.Warnings, "; "), "edit "+e.Layout.ConfigFile)
	}
	return pass(e.Layout.ConfigFile)
}

// KVM_GET_API_VERSION; the stable API has been 12 since Linux 2.6.22.
const kvmGetAPIVersion = 0xAE00

func checkKVM(ctx context.Context, e *Env) Result {
	fix := "load the KVM module ('sudo modprobe kvm_intel' or 'kvm_amd', enable virtualisation in the firmware) and add yourself to the kvm group: 'sudo usermod -aG kvm $USER', then log in again"
	severity := fail
	if e.Config.VMM == "qemu" {
		// QEMU falls back to software emulation: slower, but it works.
		severity = warn
		fix += "; without KVM the qemu driver uses software emulation (TCG), roughly 10x slower"
	}
	f, err := os.OpenFile(e.KVMDevice, os.O_RDWR, 0)
	if err != nil {
		return severity(fmt.Sprintf("%s is not usable: %v", e.KVMDevice, err), fix)
	}
	defer f.Close()
	v, err := unix.IoctlRetInt(int(f.Fd()), kvmGetAPIVersion)
	if err != nil || v != 12 {
		return severity(fmt.Sprintf("%s answers KVM_GET_API_VERSION with %d (%v), want 12", e.KVMDevice, v, err), fix)
	}
	return pass(e.KVMDevice + " is usable (KVM API 12)")
}

var fcVersionRE = regexp.MustCompile(`Firecracker v(\d+)\.(\d+)\.(\d+)`)

// minFirecracker is the oldest Firecracker whose API banger speaks.
var minFirecracker = [2]int{1, 15}

func checkVMM(ctx context.Context, e *Env) Result {
	if e.Config.VMM == "qemu" {
		p, err := e.LookPath("qemu-system-x86_64")
		if err != nil {
			return fail("qemu-system-x86_64 not found in PATH (vmm = \"qemu\")", "sudo apt-get install qemu-system-x86")
		}
		return pass("qemu: " + p)
	}
	bin := e.Config.FirecrackerBin
	if bin == "" {
		p, err := e.LookPath("firecracker")
		if err != nil {
			return fail("firecracker not found in PATH (vmm = \"firecracker\")",
				"install a Firecracker release (v1.15 or newer) on PATH, or set firecracker_bin in the config; on hosts without KVM or Firecracker set vmm = \"qemu\"")
		}
		bin = p
	}
	out, err := runQuick(ctx, bin, "--version")
	if err != nil {
		return fail(fmt.Sprintf("%s --version failed: %v", bin, err), "check that "+bin+" is a Firecracker binary for this architecture")
	}
	m := fcVersionRE.FindStringSubmatch(out)
	if m == nil {
		return fail(fmt.Sprintf("%s --version printed %q, not a Firecracker version", bin, firstLine(out)), "point firecracker_bin at a Firecracker binary")
	}
	var maj, min int
	fmt.Sscan(m[1], &maj)
	fmt.Sscan(m[2], &min)
	if maj < minFirecracker[0] || (maj == minFirecracker[0] && min < minFirecracker[1]) {
		return fail(fmt.Sprintf("%s is Firecracker v%s.%s.%s; banger needs v%d.%d or newer", bin, m[1], m[2], m[3], minFirecracker[0], minFirecracker[1]),
			"install a newer Firecracker release")
	}
	return pass(fmt.Sprintf("%s (v%s.%s.%s)", bin, m[1], m[2], m[3]))
}

func checkE2fsprogs(ctx context.Context, e *Env) Result {
	var missing []string
	for _, t := range []string{"mkfs.ext4", "e2fsck", "resize2fs", "tune2fs", "debugfs"} {
		if _, err := e.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fail("missing "+strings.Join(missing, ", "), "sudo apt-get install e2fsprogs (and make sure /usr/sbin is in PATH)")
	}
	return pass("mkfs.ext4, e2fsck, resize2fs, tune2fs, debugfs found")
}

func checkTun(ctx context.Context, e *Env) Result {
	f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if errors.Is(err, fs.ErrPermission) {
		// VMMs open their TAP through it as you; Debian makes it 0666.
		return fail("/dev/net/tun is not usable: "+err.Error(), "sudo chmod 0666 /dev/net/tun")
	}
	if err != nil {
		return fail("/dev/net/tun is not usable: "+err.Error(), "sudo modprobe tun")
	}
	f.Close()
	return pass("/dev/net/tun is usable")
}

// networkStatus is the host network's status, asked once per Run.
func (e *Env) networkStatus(ctx context.Context) network.Status {
	if e.netStatus == nil {
		st := e.Network(ctx, e.Config)
		e.netStatus = &st
	}
	return *e.netStatus
}

// networkPiece turns one piece of the network status into a check.
func networkPiece(name string) func(ctx context.Context, e *Env) Result {
	return func(ctx context.Context, e *Env) Result {
		p := e.networkStatus(ctx).Piece(name)
		switch p.State {
		case network.StateOK:
			return pass(p.Detail)
		case network.StateUnknown, network.StateOff:
			return warn(p.Detail, p.Fix)
		}
		return fail(p.Detail, p.Fix)
	}
}

// checkVMDNS reports whether <vm>.vm names resolve on the host: routed by
// systemd-resolved to banger's DNS on the bridge, and answered by it.
func checkVMDNS(ctx context.Context, e *Env) Result {
	st := e.networkStatus(ctx)
	switch p := st.Piece("resolved"); p.State {
	case network.StateOK:
	case network.StateOff, network.StateUnknown:
		return warn(p.Detail, p.Fix)
	default:
		return fail(p.Detail, p.Fix)
	}
	bridgeDNS := net.JoinHostPort(e.Config.BridgeIP.String(), "53")
	servers := e.Resolvers()
	if len(servers) == 0 {
		return warn("the host has no DNS server in /etc/resolv.conf", "")
	}
	err := e.ProbeDNS(ctx, servers[0])
	if err == nil {
		return pass(fmt.Sprintf("<vm>.%s names resolve on the host (%s routes them to banger's DNS on %s)", network.Domain, servers[0], bridgeDNS))
	}
	if derr := e.ProbeDNS(ctx, bridgeDNS); derr != nil {
		return warn(fmt.Sprintf("banger's DNS does not answer on %s: %v", bridgeDNS, derr), "banger daemon start (the daemon serves *.vm names)")
	}
	if !st.BridgeCarrier {
		return warn(fmt.Sprintf("no VM runs, so systemd-resolved ignores %s (no carrier) and *.%s lookups fail until one starts", e.Config.BridgeName, network.Domain), "")
	}
	return fail(fmt.Sprintf("*.%s lookups through %s do not reach banger's DNS: %v", network.Domain, servers[0], err), network.SetupCommand)
}

// resolvConfServers lists the nameservers of /etc/resolv.conf as host:port.
func resolvConfServers() []string {
	cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil {
		return nil
	}
	out := make([]string, len(cc.Servers))
	for i, s := range cc.Servers {
		out[i] = net.JoinHostPort(s, cc.Port)
	}
	return out
}

const gib = 1 << 30

func checkDisk(ctx context.Context, e *Env) Result {
	dir := e.Layout.StateDir
	for {
		if _, err := os.Stat(dir); err == nil || dir == "/" {
			break
		}
		dir = filepath.Dir(dir)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return warn("cannot stat "+dir+": "+err.Error(), "")
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	detail := fmt.Sprintf("%.1f GiB free under %s", float64(free)/gib, dir)
	switch {
	case free < 1*gib:
		return fail(detail+"; images and VM disks need several GiB", "free space on that filesystem or point XDG_STATE_HOME elsewhere")
	case free < 10*gib:
		return warn(detail+"; a few images and VMs will fill it", "free space on that filesystem")
	}
	return pass(detail)
}

func checkSSHKey(ctx context.Context, e *Env) Result {
	path := e.Config.SSHKey(e.Layout.ConfigDir)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return warn("no SSH key at "+path+" yet", "banger daemon start (the daemon creates it)")
	}
	if err != nil {
		return fail("cannot read "+path+": "+err.Error(), "fix its permissions: chmod 600 "+path)
	}
	if _, err := ssh.ParsePrivateKey(data); err != nil {
		return fail(path+" is not a usable unencrypted private key: "+err.Error(), "set ssh_key_path to another key, or remove "+path+" so banger creates one")
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return warn(fmt.Sprintf("%s has mode %o; ssh refuses keys others can read", path, fi.Mode().Perm()), "chmod 600 "+path)
	}
	return pass(path)
}

func checkDaemon(ctx context.Context, e *Env) Result {
	if e.DaemonStatus == nil {
		return warn("not checked", "")
	}
	if err := e.DaemonStatus(ctx); err != nil {
		return warn(err.Error(), "banger daemon start (banger also starts it on demand)")
	}
	return pass("bangerd answers on " + e.Layout.SocketPath)
}

func runQuick(ctx context.Context, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}
