package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

	"banger/internal/kernel"
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
	severity := fail
	suffix := ""
	if e.Config.VMM == "qemu" {
		// QEMU falls back to software emulation: slower, but it works.
		severity = warn
		suffix = "; without KVM the qemu driver uses software emulation (TCG), roughly 10x slower"
	} else {
		suffix = "; Firecracker cannot run without KVM: on such a host set vmm = \"qemu\""
	}
	f, err := os.OpenFile(e.KVMDevice, os.O_RDWR, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return severity(e.KVMDevice+" does not exist: the kvm module is not loaded, or this machine has no hardware virtualisation",
			"sudo modprobe kvm_intel (or kvm_amd); if that fails, enable VT-x/AMD-V in the firmware, or nested virtualisation on the host of this VM"+suffix)
	case errors.Is(err, fs.ErrPermission):
		return severity(fmt.Sprintf("%s is not readable and writable by you (uid %d): %v", e.KVMDevice, os.Getuid(), err),
			"sudo usermod -aG kvm $USER, then log in again"+suffix)
	case err != nil:
		return severity(fmt.Sprintf("%s is not usable: %v", e.KVMDevice, err), "check that "+e.KVMDevice+" is the KVM character device"+suffix)
	}
	defer f.Close()
	v, err := unix.IoctlRetInt(int(f.Fd()), kvmGetAPIVersion)
	if err != nil || v != 12 {
		return severity(fmt.Sprintf("%s answers KVM_GET_API_VERSION with %d (%v), want 12", e.KVMDevice, v, err),
			"make sure "+e.KVMDevice+" is the KVM device (ls -l: character device 10,232)"+suffix)
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
	install := fmt.Sprintf("install a Firecracker release (v%d.%d or newer) from https://github.com/firecracker-microvm/firecracker/releases on PATH, or set firecracker_bin in the config; on hosts without KVM or Firecracker set vmm = \"qemu\"",
		minFirecracker[0], minFirecracker[1])
	bin := e.Config.FirecrackerBin
	if bin == "" {
		p, err := e.LookPath("firecracker")
		if err != nil {
			return fail("firecracker not found in PATH (vmm = \"firecracker\")", install)
		}
		bin = p
	} else if fi, err := os.Stat(bin); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fail(fmt.Sprintf("firecracker_bin %s is not an executable file", bin), install)
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
			install)
	}
	return pass(fmt.Sprintf("%s (v%s.%s.%s)", bin, m[1], m[2], m[3]))
}

// fcKernelFix is what to do about a default image whose kernel
// Firecracker cannot boot.
const fcKernelFix = "build a Firecracker kernel with scripts/build-firecracker-kernel (or pull one from the kernel catalog) and give the image that kernel (docs/firecracker.md); or set vmm = \"qemu\", which boots any kernel"

// checkKernel checks that Firecracker can boot the default image's
// kernel: an uncompressed ELF vmlinux whose virtio-mmio driver takes its
// devices from the command line, as Firecracker announces them.
func checkKernel(ctx context.Context, e *Env) Result {
	if e.Config.VMM == "qemu" {
		return pass("qemu boots ELF vmlinux and bzImage kernels")
	}
	name := e.Config.DefaultImageName
	path, err := e.defaultImageKernel(ctx)
	if err != nil {
		return warn(fmt.Sprintf("cannot find the kernel of image %q: %v", name, err), "banger image list shows the images and their kernels")
	}
	if path == "" {
		if e.Config.DefaultKernelRef == "" {
			return warn(fmt.Sprintf("no image named %q yet, and no default_kernel_ref for the first use to make it with", name),
				"set default_kernel_ref to a Firecracker kernel (banger kernel list --available), or build one with scripts/build-firecracker-kernel (docs/firecracker.md)")
		}
		return pass(fmt.Sprintf("no image named %q yet; the first 'vm run' makes it, booting kernel %s", name, e.Config.DefaultKernelRef))
	}
	format, err := kernel.Format(path)
	if err != nil {
		return fail(fmt.Sprintf("image %q: %v", name, err), fcKernelFix)
	}
	if format == kernel.FormatBzImage {
		return warn(fmt.Sprintf("image %q boots %s, a bzImage; Firecracker releases boot only an uncompressed ELF vmlinux", name, path), fcKernelFix)
	}
	ok, err := fileContains(path, []byte(mmioCmdlineParam))
	if err != nil {
		return warn(fmt.Sprintf("reading %s: %v", path, err), "check that you can read "+path)
	}
	if !ok {
		return warn(fmt.Sprintf("image %q boots %s, which lacks built-in virtio-mmio command-line devices (CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES): it would not see Firecracker's disks, network or vsock", name, path), fcKernelFix)
	}
	return pass(fmt.Sprintf("image %q boots %s, an ELF vmlinux with virtio-mmio command-line devices", name, path))
}

// mmioCmdlineParam is the kernel parameter CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES
// adds; its name is in the vmlinux when the driver is built in.
const mmioCmdlineParam = "virtio_mmio.device"

// defaultImageKernel asks the hook, or reads the managed images'
// manifests, once per run: two checks want it.
func (e *Env) defaultImageKernel(ctx context.Context) (string, error) {
	if e.defKernel == nil {
		path, err := e.findDefaultImageKernel(ctx)
		e.defKernel = &kernelLookup{path, err}
	}
	return e.defKernel.path, e.defKernel.err
}

type kernelLookup struct {
	path string
	err  error
}

func (e *Env) findDefaultImageKernel(ctx context.Context) (string, error) {
	if e.DefaultImageKernel != nil {
		return e.DefaultImageKernel(ctx)
	}
	manifests, _ := filepath.Glob(filepath.Join(e.Layout.ImagesDir, "*", "manifest.json"))
	var best struct {
		Kernel  string    `json:"kernel"`
		Updated time.Time `json:"updated_at"`
	}
	for _, m := range manifests {
		data, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		var im struct {
			Name    string    `json:"name"`
			Kernel  string    `json:"kernel"`
			Updated time.Time `json:"updated_at"`
		}
		if json.Unmarshal(data, &im) == nil && im.Name == e.Config.DefaultImageName && !im.Updated.Before(best.Updated) {
			best.Kernel, best.Updated = im.Kernel, im.Updated
		}
	}
	return best.Kernel, nil
}

// fileContains reports whether the file at path holds needle.
func fileContains(path string, needle []byte) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20+len(needle))
	keep := 0
	for {
		n, err := f.Read(buf[keep:])
		if bytes.Contains(buf[:keep+n], needle) {
			return true, nil
		}
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		// Keep the tail, in case the needle straddles two reads.
		tail := min(keep+n, len(needle)-1)
		copy(buf, buf[keep+n-tail:keep+n])
		keep = tail
	}
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

// checkDefaultImageTools checks what making the default image on first
// use runs on the host: the Debian cloud kernel for QEMU (apt-get,
// dpkg-deb, a static busybox for its initramfs) and debootstrap for the
// offline source.
func checkDefaultImageTools(ctx context.Context, e *Env) Result {
	name := e.Config.DefaultImageName
	if path, err := e.defaultImageKernel(ctx); err == nil && path != "" {
		return pass(fmt.Sprintf("image %q exists; nothing to make on first use", name))
	}
	var need []string
	if e.Config.VMM == "qemu" {
		need = append(need, "apt-get", "apt-cache", "dpkg-deb", "busybox")
	}
	if e.Config.DefaultImageSource != "oci" {
		need = append(need, "debootstrap", "chroot")
	}
	var missing []string
	for _, t := range need {
		if _, err := e.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return warn(fmt.Sprintf("image %q is made on first use, which runs %s: missing %s", name, strings.Join(need, ", "), strings.Join(missing, ", ")),
			"sudo apt-get install debootstrap busybox-static; or register an image and set default_image_name")
	}
	if len(need) == 0 {
		return pass(fmt.Sprintf("image %q is made on first use from %s", name, e.Config.DefaultImageRef))
	}
	return pass(fmt.Sprintf("image %q is made on first use; %s found", name, strings.Join(need, ", ")))
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
		return pieceResult(e.networkStatus(ctx).Piece(name))
	}
}

// statusAsRoot is the fix for a piece that could not be checked: most
// such pieces (nftables, some sysctls) are readable only by root.
const statusAsRoot = `'sudo "$(command -v banger)" system status' checks it as root`

// pieceResult is a piece's verdict: unknown and off pieces warn, missing
// and wrong ones fail. A piece reported without detail or fix (an error
// the status could not explain) gets a generic one, so no warning or
// failure is left without something to do.
func pieceResult(p network.PieceStatus) Result {
	if p.State == network.StateOK {
		return pass(p.Detail)
	}
	if p.Detail == "" {
		p.Detail = fmt.Sprintf("the %s piece of banger's host network is %s", p.Name, p.State)
	}
	if p.Fix == "" {
		p.Fix = network.SetupCommand
		if p.State == network.StateUnknown || p.State == network.StateOff {
			p.Fix = statusAsRoot
		}
	}
	if p.State == network.StateUnknown || p.State == network.StateOff {
		return warn(p.Detail, p.Fix)
	}
	return fail(p.Detail, p.Fix)
}

// checkBootUnit reports whether the network comes back after a reboot.
// Without the unit VMs work until then, so it only ever warns.
func checkBootUnit(ctx context.Context, e *Env) Result {
	p := e.networkStatus(ctx).Piece("unit")
	if p.State == network.StateOK {
		return pass(p.Detail)
	}
	if p.Detail == "" {
		p.Detail = "cannot tell whether " + network.UnitName + " rebuilds the network at boot"
	}
	if p.Fix == "" {
		p.Fix = network.SetupCommand
	}
	return warn(p.Detail, p.Fix)
}

// checkVMDNS reports whether <vm>.vm names resolve on the host: routed by
// systemd-resolved to banger's DNS on the bridge, and answered by it.
func checkVMDNS(ctx context.Context, e *Env) Result {
	st := e.networkStatus(ctx)
	if p := st.Piece("resolved"); p.State != network.StateOK {
		return pieceResult(p)
	}
	bridgeDNS := net.JoinHostPort(e.Config.BridgeIP.String(), "53")
	servers := e.Resolvers()
	if len(servers) == 0 {
		// systemd-resolved runs (the resolved piece is fine) but the host
		// does not ask it.
		return warn("the host has no DNS server in /etc/resolv.conf, so *."+network.Domain+" lookups go nowhere",
			"use systemd-resolved's stub resolver: sudo ln -sf /run/systemd/resolve/stub-resolv.conf /etc/resolv.conf")
	}
	err := e.ProbeDNS(ctx, servers[0])
	if err == nil {
		return pass(fmt.Sprintf("<vm>.%s names resolve on the host (%s routes them to banger's DNS on %s)", network.Domain, servers[0], bridgeDNS))
	}
	if derr := e.ProbeDNS(ctx, bridgeDNS); derr != nil {
		return warn(fmt.Sprintf("banger's DNS does not answer on %s: %v", bridgeDNS, derr), "banger daemon start (the daemon serves *.vm names)")
	}
	if !st.BridgeCarrier {
		// Nothing is broken: there is simply no name to look up yet.
		return warn(fmt.Sprintf("no VM runs, so systemd-resolved ignores %s (no carrier) and *.%s lookups fail until one starts", e.Config.BridgeName, network.Domain),
			"start a VM (banger vm run), then run banger doctor again to check *."+network.Domain+" names")
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
	free, err := e.FreeSpace(dir)
	if err != nil {
		return warn("cannot tell the free space under "+dir+": "+err.Error(),
			"make "+dir+" readable by you, or set XDG_STATE_HOME to a directory on a local filesystem")
	}
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
		return fail("cannot read "+path+": "+err.Error(), "make "+path+" a private key file you can read (chmod 600 "+path+"), or set ssh_key_path to another key")
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
		return warn("not checked: this caller gave no way to reach the daemon", "banger daemon status says whether bangerd answers")
	}
	if err := e.DaemonStatus(ctx); err != nil {
		return warn(err.Error(), "banger daemon start (banger also starts it on demand)")
	}
	return pass("bangerd answers on " + e.Layout.SocketPath)
}

// statfsFree is the space under dir available to unprivileged users.
func statfsFree(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
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
