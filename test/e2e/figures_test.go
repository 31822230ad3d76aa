//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"banger/internal/api"
	"banger/internal/client"
)

// TestBootFigures measures create -> agent ready and create -> SSH for
// five VMs of each fixture image and logs the medians. It asserts nothing
// about time; run it with BANGER_E2E_FIGURES=1.
func TestBootFigures(t *testing.T) {
	if os.Getenv("BANGER_E2E_FIGURES") == "" {
		t.Skip("set BANGER_E2E_FIGURES=1 to measure boot times")
	}
	e := newEnv(t, "")
	e.startDaemon()
	e.registerBusybox("bb")
	e.registerDebian("deb")
	cl := client.New(filepath.Join(e.rt, "banger", "bangerd.sock"))
	for _, img := range []string{"bb", "deb"} {
		var agent, ssh []time.Duration
		for i := 0; i < 5; i++ {
			name := fmt.Sprintf("%s%d", img, i)
			t0 := time.Now()
			var tAgent time.Time
			_, err := cl.CreateVM(context.Background(), api.CreateVMRequest{Name: name, Image: img, MemoryMiB: 512, DiskBytes: 1 << 30}, func(ev api.Event) {
				if ev.Step == "ssh" && tAgent.IsZero() {
					tAgent = time.Now()
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			ssh = append(ssh, time.Since(t0))
			agent = append(agent, tAgent.Sub(t0))
			e.ok("vm", "delete", "--force", name)
		}
		t.Logf("image %s: create->agent median %s %v; create->ssh median %s %v", img, median(agent), agent, median(ssh), ssh)
	}
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2].Round(10 * time.Millisecond)
}
