package qemu

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"banger/internal/vmm"
)

// TestSetLink: SetLink names the VM's tap netdev in QMP set_link, as the
// fake QEMU checks against its command line, and sets what it is asked.
func TestSetLink(t *testing.T) {
	d, spec := fakeDriver(t, "ok")
	spec.Net = &vmm.Net{TAP: "bgtap0", MAC: "06:00:ac:10:00:02"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := d.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	fakeChild(t, spec.RuntimeDir)
	defer d.Kill(context.Background(), h)
	for _, up := range []bool{false, true, false} {
		if err := d.SetLink(ctx, h, up); err != nil {
			t.Fatalf("SetLink(%v): %v", up, err)
		}
		got, _ := os.ReadFile(filepath.Join(spec.RuntimeDir, linkFile))
		if want := map[bool]string{true: "true", false: "false"}[up]; string(got) != want {
			t.Errorf("after SetLink(%v) QEMU's link is %q, want %s", up, got, want)
		}
	}
	if err := d.Kill(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := d.SetLink(ctx, h, true); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("SetLink of a dead vm: %v; want not running", err)
	}
}
