package qemu

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"banger/internal/vmm"
)

// forkSpec is testSpec as a fork sees it: every path, the TAP, the MAC
// and the runtime dir differ; the devices do not.
func forkSpec() vmm.Spec {
	s := testSpec()
	s.Name, s.RuntimeDir, s.ConsoleLog = "fork", "/run/banger/vm/2", "/state/vms/2/console.log"
	s.Kernel, s.Initrd, s.Cmdline = "/k2/vmlinuz", "/k2/initrd.img", "root=/dev/vda quiet"
	s.Disks = []vmm.Disk{
		{ID: "rootfs", Path: "/state/vms/2/root,fs.ext4"},
		{ID: "modules", Path: "/k2/modules.ext4", ReadOnly: true},
		{ID: "work", Path: "/state/vms/2/work.ext4"},
	}
	s.Net = &vmm.Net{TAP: "tap-bg9", MAC: "02:bd:00:00:00:09"}
	return s
}

func TestDeviceModelIgnoresWhatAForkChanges(t *testing.T) {
	saved := deviceModel(buildArgs(testSpec(), "tcg", 2400000, memBackend{Path: "/run/banger/vm/1/memory", Share: true}))
	for _, mem := range []memBackend{{}, {Path: "/state/vms/1/snap/memory"}} {
		got := deviceModel(append(buildArgs(forkSpec(), "tcg", 2400000, mem), "-incoming", "defer"))
		if diff := cmp.Diff(saved, got); diff != "" {
			t.Errorf("fork's model with memory %+v differs (-saved +fork):\n%s", mem, diff)
		}
		if d := saved.diff(got); d != "" {
			t.Errorf("diff = %q, want none", d)
		}
	}
	for _, e := range saved {
		if strings.Contains(e, "/state") || strings.Contains(e, "/k") || strings.Contains(e, "/run") || strings.Contains(e, "tap-") || strings.Contains(e, "02:bd") {
			t.Errorf("model entry %q names a path, TAP or MAC", e)
		}
	}
	if saved.cpus() != 2 || saved.memoryMiB() != 512 {
		t.Errorf("model cpus %d memory %d, want 2 and 512", saved.cpus(), saved.memoryMiB())
	}
}

func TestDeviceModelSeesDeviceChanges(t *testing.T) {
	saved := deviceModel(buildArgs(testSpec(), "tcg", 0, memBackend{}))
	tests := []struct {
		name   string
		change func(*vmm.Spec)
		accel  string
		want   string // in the diff
	}{
		{"memory", func(s *vmm.Spec) { s.MemoryMiB = 1024 }, "tcg", `"-m 1024"`},
		{"cpus", func(s *vmm.Spec) { s.CPUs = 1 }, "tcg", `"-smp 1"`},
		{"no net", func(s *vmm.Spec) { s.Net = nil }, "tcg", `saved "-netdev tap,id=net0"`},
		{"disk added", func(s *vmm.Spec) {
			s.Disks = append(s.Disks, vmm.Disk{ID: "extra", Path: "/x.ext4"})
		}, "tcg", `"-drive id=extra"`},
		{"disk read-only", func(s *vmm.Spec) { s.Disks[2].ReadOnly = true }, "tcg", `"-drive id=work,readonly=on"`},
		{"disk order", func(s *vmm.Spec) { s.Disks[0], s.Disks[2] = s.Disks[2], s.Disks[0] }, "tcg", "another order"},
		{"accel", func(s *vmm.Spec) {}, "kvm", `"-accel kvm"`},
	}
	for _, tt := range tests {
		spec := testSpec()
		tt.change(&spec)
		d := saved.diff(deviceModel(buildArgs(spec, tt.accel, 0, memBackend{})))
		if !strings.Contains(d, tt.want) {
			t.Errorf("%s: diff = %q, want it to contain %s", tt.name, d, tt.want)
		}
	}
}

func TestBuildArgsMemoryBackend(t *testing.T) {
	tests := []struct {
		mem  memBackend
		want string
	}{
		{memBackend{}, "memory-backend-ram,id=ram0,size=512M"},
		{memBackend{Path: "/rt/memory", Share: true}, "memory-backend-file,id=ram0,size=512M,mem-path=/rt/memory,share=on"},
		{memBackend{Path: "/snap,1/memory"}, "memory-backend-file,id=ram0,size=512M,mem-path=/snap,,1/memory,share=off"},
	}
	for _, tt := range tests {
		args := buildArgs(testSpec(), "tcg", 0, tt.mem)
		objects := values(args, "-object")
		if !slices.Contains(objects, tt.want) {
			t.Errorf("memory %+v: -object = %q, want %q among them", tt.mem, objects, tt.want)
		}
		if got := values(args, "-M"); !slices.Equal(got, []string{"microvm,x-option-roms=off,rtc=on,memory-backend=ram0"}) {
			t.Errorf("-M = %q, want the machine on backend ram0", got)
		}
	}
}
