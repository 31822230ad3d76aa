package qemu

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"banger/internal/vmm"
)

// values returns what follows each occurrence of flag in args.
func values(args []string, flag string) []string {
	var out []string
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			out = append(out, args[i+1])
		}
	}
	return out
}

func testSpec() vmm.Spec {
	return vmm.Spec{
		Name: "dev", RuntimeDir: "/run/banger/vm/1", ConsoleLog: "/state/vms/1/console.log",
		CPUs: 2, MemoryMiB: 512, Kernel: "/k/vmlinuz", Initrd: "/k/initrd.img", Cmdline: "root=/dev/vda",
		Disks: []vmm.Disk{
			{ID: "rootfs", Path: "/state/vms/1/rootfs.ext4"},
			{ID: "modules", Path: "/k/modules.ext4", ReadOnly: true},
			{ID: "work", Path: "/state/vms/1/work.ext4"},
		},
		Net: &vmm.Net{TAP: "tap-bg3", MAC: "02:bd:00:00:00:03"},
	}
}

func TestBuildArgs(t *testing.T) {
	args := buildArgs(testSpec(), "tcg", 2400000, memBackend{})
	for _, flag := range []string{"-no-reboot", "-S", "-daemonize", "-nodefaults", "-no-user-config"} {
		if !slices.Contains(args, flag) {
			t.Errorf("args lack %s: %q", flag, args)
		}
	}
	single := []struct{ flag, want string }{
		{"-name", "banger-dev,process=banger-dev"},
		{"-m", "512"},
		{"-smp", "2"},
		{"-pidfile", "/run/banger/vm/1/qemu.pid"},
		{"-qmp", "unix:/run/banger/vm/1/qmp.sock,server=on,wait=off"},
		{"-serial", "chardev:console"},
		{"-kernel", "/k/vmlinuz"},
		{"-initrd", "/k/initrd.img"},
		{"-netdev", "tap,id=net0,ifname=tap-bg3,script=no,downscript=no"},
		{"-append", "console=ttyS0 reboot=k panic=1 tsc_early_khz=2400000 root=/dev/vda"},
	}
	for _, c := range single {
		if got := values(args, c.flag); !slices.Equal(got, []string{c.want}) {
			t.Errorf("%s = %q, want [%q]", c.flag, got, c.want)
		}
	}
	wantDrives := []string{
		"id=rootfs,file=/state/vms/1/rootfs.ext4,format=raw,if=none,discard=unmap,detect-zeroes=unmap",
		"id=modules,file=/k/modules.ext4,format=raw,if=none,discard=unmap,detect-zeroes=unmap,readonly=on",
		"id=work,file=/state/vms/1/work.ext4,format=raw,if=none,discard=unmap,detect-zeroes=unmap",
	}
	if diff := cmp.Diff(wantDrives, values(args, "-drive")); diff != "" {
		t.Errorf("-drive (-want +got):\n%s", diff)
	}
	wantChardevs := []string{
		"file,id=console,path=/state/vms/1/console.log,append=on",
		"socket,id=agent,path=/run/banger/vm/1/agent.sock,server=on,wait=off",
	}
	if diff := cmp.Diff(wantChardevs, values(args, "-chardev")); diff != "" {
		t.Errorf("-chardev (-want +got):\n%s", diff)
	}
	// Disks keep their order: the first is the root, /dev/vda.
	wantDevices := []string{
		"virtio-rng-device,rng=rng0",
		"virtio-blk-device,drive=rootfs",
		"virtio-blk-device,drive=modules",
		"virtio-blk-device,drive=work",
		"virtio-net-device,netdev=net0,mac=02:bd:00:00:00:03",
		"virtio-serial-device",
		"virtserialport,chardev=agent,name=org.banger.agent",
	}
	if diff := cmp.Diff(wantDevices, values(args, "-device")); diff != "" {
		t.Errorf("-device (-want +got):\n%s", diff)
	}
}

func TestBuildArgsAccel(t *testing.T) {
	tests := []struct {
		accel, wantCPU string
		tscKHz         int
		wantTSC        bool
	}{
		{accel: "kvm", wantCPU: "host", tscKHz: 2400000, wantTSC: false},
		{accel: "tcg", wantCPU: "max", tscKHz: 2400000, wantTSC: true},
		{accel: "tcg", wantCPU: "max", tscKHz: 0, wantTSC: false}, // host frequency unknown
	}
	for _, tt := range tests {
		args := buildArgs(testSpec(), tt.accel, tt.tscKHz, memBackend{})
		if got := values(args, "-accel"); !slices.Equal(got, []string{tt.accel}) {
			t.Errorf("%s: -accel = %q", tt.accel, got)
		}
		if got := values(args, "-cpu"); !slices.Equal(got, []string{tt.wantCPU}) {
			t.Errorf("%s: -cpu = %q, want %s", tt.accel, got, tt.wantCPU)
		}
		appendArg := strings.Join(values(args, "-append"), " ")
		if got := strings.Contains(appendArg, "tsc_early_khz="); got != tt.wantTSC {
			t.Errorf("%s with %d kHz: -append %q has tsc_early_khz: %v, want %v", tt.accel, tt.tscKHz, appendArg, got, tt.wantTSC)
		}
	}
}

func TestBuildArgsOptional(t *testing.T) {
	spec := testSpec()
	spec.Initrd, spec.Net = "", nil
	args := buildArgs(spec, "kvm", 0, memBackend{})
	for _, flag := range []string{"-initrd", "-netdev"} {
		if got := values(args, flag); got != nil {
			t.Errorf("%s = %q without one in the spec", flag, got)
		}
	}
	for _, d := range values(args, "-device") {
		if strings.HasPrefix(d, "virtio-net-device") {
			t.Errorf("a network device without a network: %q", d)
		}
	}
}

// TestBuildArgsEscapesCommas: a comma in a path inside a key=value option
// would end the value; QEMU reads ",," as a literal comma. Options that
// take a bare path are passed as they are.
func TestBuildArgsEscapesCommas(t *testing.T) {
	spec := testSpec()
	spec.RuntimeDir = "/run/a,b"
	spec.ConsoleLog = "/logs/c,d.log"
	spec.Kernel = "/k,1/vmlinuz"
	spec.Disks = []vmm.Disk{{ID: "rootfs", Path: "/disks/e,f.ext4", ReadOnly: true}}
	args := buildArgs(spec, "kvm", 0, memBackend{})
	want := map[string][]string{
		"-qmp":     {"unix:/run/a,,b/qmp.sock,server=on,wait=off"},
		"-pidfile": {"/run/a,b/qemu.pid"},
		"-kernel":  {"/k,1/vmlinuz"},
		"-drive":   {"id=rootfs,file=/disks/e,,f.ext4,format=raw,if=none,discard=unmap,detect-zeroes=unmap,readonly=on"},
		"-chardev": {"file,id=console,path=/logs/c,,d.log,append=on", "socket,id=agent,path=/run/a,,b/agent.sock,server=on,wait=off"},
	}
	for flag, w := range want {
		if diff := cmp.Diff(w, values(args, flag)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", flag, diff)
		}
	}
}

func TestCmdline(t *testing.T) {
	tests := []struct {
		base, accel string
		tscKHz      int
		want        string
	}{
		{"root=/dev/vda quiet", "tcg", 3000000, "console=ttyS0 reboot=k panic=1 tsc_early_khz=3000000 root=/dev/vda quiet"},
		{"root=/dev/vda quiet", "kvm", 3000000, "console=ttyS0 reboot=k panic=1 root=/dev/vda quiet"},
		{"root=/dev/vda", "tcg", 0, "console=ttyS0 reboot=k panic=1 root=/dev/vda"},
		{"", "kvm", 0, "console=ttyS0 reboot=k panic=1"},
	}
	for _, tt := range tests {
		if got := cmdline(tt.base, tt.accel, tt.tscKHz); got != tt.want {
			t.Errorf("cmdline(%q, %s, %d) = %q, want %q", tt.base, tt.accel, tt.tscKHz, got, tt.want)
		}
	}
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{"/a/b": "/a/b", "/a,b": "/a,,b", ",,": ",,,,"} {
		if got := escape(in); got != want {
			t.Errorf("escape(%q) = %q, want %q", in, got, want)
		}
	}
}
