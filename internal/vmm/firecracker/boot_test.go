package firecracker

import (
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"banger/internal/vmm"
)

func testSpec() vmm.Spec {
	return vmm.Spec{
		Name: "web", RuntimeDir: "/run/banger/vms/web", ConsoleLog: "/state/web/console.log",
		CPUs: 2, MemoryMiB: 512, Kernel: "/k/vmlinux", Initrd: "/k/initrd",
		Cmdline: "banger.ip=172.16.0.2/24 banger.gw=172.16.0.1",
		Disks: []vmm.Disk{
			{ID: "rootfs", Path: "/state/web/rootfs.ext4"},
			{ID: "work", Path: "/state/web/work.ext4", ReadOnly: true},
		},
		Net:      &vmm.Net{TAP: "bgtap3", MAC: "06:00:ac:10:00:02"},
		VsockCID: 42,
	}
}

func TestBootPlan(t *testing.T) {
	spec := testSpec()
	l := plainLayout(spec)
	got := bootPlan(spec, l, guestCID(spec))
	rt := spec.RuntimeDir
	want := []apiCall{
		{"configuring the log", "PUT", "/logger", Logger{LogPath: rt + "/firecracker.log", Level: "Info", ShowLevel: true}},
		{"configuring metrics", "PUT", "/metrics", Metrics{MetricsPath: rt + "/metrics.json"}},
		{"configuring the machine", "PUT", "/machine-config", MachineConfig{VcpuCount: 2, MemSizeMib: 512}},
		{"setting the boot source", "PUT", "/boot-source", BootSource{
			KernelImagePath: "/k/vmlinux", InitrdPath: "/k/initrd",
			BootArgs: "console=ttyS0 reboot=k panic=1 i8042.noaux i8042.nomux i8042.dumbkbd banger.ip=172.16.0.2/24 banger.gw=172.16.0.1",
		}},
		{"attaching drive rootfs", "PUT", "/drives/rootfs", Drive{DriveID: "rootfs", PathOnHost: "drives/rootfs", IsRootDevice: true}},
		{"attaching drive work", "PUT", "/drives/work", Drive{DriveID: "work", PathOnHost: "drives/work", IsReadOnly: true}},
		{"attaching network interface eth0", "PUT", "/network-interfaces/eth0", NetworkInterface{IfaceID: "eth0", HostDevName: "bgtap3", GuestMac: "06:00:ac:10:00:02"}},
		{"attaching vsock", "PUT", "/vsock", Vsock{GuestCid: 42, UdsPath: rt + "/vsock.sock"}},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(apiCall{})); diff != "" {
		t.Errorf("bootPlan (-want +got):\n%s", diff)
	}

	spec.Net, spec.Initrd = nil, ""
	for _, c := range bootPlan(spec, plainLayout(spec), 3) {
		if strings.HasPrefix(c.path, "/network-interfaces") {
			t.Error("a network interface without spec.Net")
		}
		if bs, ok := c.body.(BootSource); ok && bs.InitrdPath != "" {
			t.Error("an initrd without spec.Initrd")
		}
	}
}

func TestBootArgs(t *testing.T) {
	if got := bootArgs("  "); got != BaseBootArgs {
		t.Errorf("bootArgs(blank) = %q", got)
	}
	if got, want := bootArgs("quiet"), BaseBootArgs+" quiet"; got != want {
		t.Errorf("bootArgs = %q, want %q", got, want)
	}
}

func TestGuestCID(t *testing.T) {
	a := vmm.Spec{RuntimeDir: "/run/banger/vms/a"}
	b := vmm.Spec{RuntimeDir: "/run/banger/vms/b"}
	if guestCID(a) != guestCID(a) {
		t.Error("CID is not stable")
	}
	if guestCID(a) == guestCID(b) {
		t.Error("two runtime dirs share a CID")
	}
	for i := 0; i < 1000; i++ {
		s := vmm.Spec{RuntimeDir: "/rt/" + strings.Repeat("x", i)}
		if c := guestCID(s); c < 3 || c == 1<<32-1 {
			t.Fatalf("guestCID(%q) = %d, a reserved CID", s.RuntimeDir, c)
		}
	}
	if got := guestCID(vmm.Spec{RuntimeDir: "/x", VsockCID: 7}); got != 7 {
		t.Errorf("guestCID with VsockCID 7 = %d", got)
	}
}

func TestInstanceID(t *testing.T) {
	valid := regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)
	for _, name := range []string{"web", "My VM_2", strings.Repeat("long", 40), "", "--"} {
		id := instanceID(vmm.Spec{Name: name, RuntimeDir: "/rt/" + name})
		if !valid.MatchString(id) {
			t.Errorf("instanceID(%q) = %q, not a valid jailer id", name, id)
		}
	}
	if instanceID(vmm.Spec{Name: "a", RuntimeDir: "/1"}) == instanceID(vmm.Spec{Name: "a", RuntimeDir: "/2"}) {
		t.Error("two VMs of the same name share an id")
	}
}

func TestLayoutRoundTrip(t *testing.T) {
	spec := testSpec()
	j := &Jailer{Binary: "/usr/bin/jailer", UID: 1000, GID: 1000, ChrootBase: "/srv/jail"}
	for name, l := range map[string]layout{"plain": plainLayout(spec), "jailed": j.jailLayout(spec, "/usr/bin/firecracker")} {
		back := layoutOf(l.handle(&proc{pid: 1, start: 2}))
		l.fc, l.links = fcPaths{}, nil // only Create needs them
		if diff := cmp.Diff(l, back, cmp.AllowUnexported(layout{}, fcPaths{})); diff != "" {
			t.Errorf("%s: layoutOf(handle) (-want +got):\n%s", name, diff)
		}
	}
}
