package debianfs

import (
	"slices"
	"strings"
	"testing"

	"banger/internal/imagebuild"
)

// The devbox base step installs what it finds missing with apt-get; run
// chrooted in the debootstrap tree, which may be offline, it must find
// everything there already.
func TestPackagesCoverTheBaseStep(t *testing.T) {
	base := imagebuild.DevboxSteps(false)[0]
	var listed []string
	for line := range strings.Lines(string(base.Script)) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "for p in "); ok {
			listed = strings.Fields(strings.TrimSuffix(rest, "; do"))
		}
	}
	if len(listed) == 0 {
		t.Fatalf("no package list found in step %s", base.Name)
	}
	for _, p := range listed {
		if !slices.Contains(Packages, p) {
			t.Errorf("step %s wants %s, which debootstrap does not install", base.Name, p)
		}
	}
}
