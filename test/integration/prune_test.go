package integration

import (
	"banger/internal/testutil/testregistry"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"banger/api"
)

// Two pulled images share their base layers; one is deleted. The prune
// frees what only it used: the kept image pulls again (under a new name,
// so it is built from the cache) without a download, and the deleted one
// downloads its own blobs again, not the shared base.
func TestImagePrune(t *testing.T) {
	requireE2fsprogs(t)
	reg := testregistry.New(t, nil)
	base := baseLayers(t)
	refKeep := pushImage(t, reg, "prune/keep:v1", nil, base[0], base[1], testLayer(t, tarEntry{name: "keep", body: "k"}))
	refGone := pushImage(t, reg, "prune/gone:v1", nil, base[0], base[1], testLayer(t, tarEntry{name: "gone", body: "g"}))
	h := newHarness(t)
	kernel := filepath.Join(t.TempDir(), "vmlinux")
	mkKernel(t, kernel)
	h.ok("image", "pull", refKeep, "--kernel", kernel, "--size", "64M")
	h.ok("image", "pull", refGone, "--kernel", kernel, "--size", "64M")
	h.ok("image", "delete", "gone-v1")

	out := h.ok("image", "prune")
	for _, want := range []string{"oci cache: removed 3 blobs, ", "build cache: removed 0 steps, 0 B", "interrupted operations: removed 0 leftovers, 0 B"} {
		if !strings.Contains(out, want) {
			t.Errorf("image prune printed:\n%s\nwant a line with %q", out, want)
		}
	}
	var rep api.PruneReport
	if err := json.Unmarshal([]byte(h.ok("image", "prune", "--json")), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.OCIBlobs+rep.BuildSteps+rep.Leftovers != 0 || rep.OCIBytes+rep.BuildBytes+rep.LeftoverBytes != 0 || len(rep.Warnings) != 0 {
		t.Errorf("second prune = %+v, want nothing left to remove", rep)
	}

	gets := reg.BlobGETs()
	h.ok("image", "pull", refKeep, "--name", "keep-copy", "--kernel", kernel, "--size", "64M")
	if got := reg.BlobGETs() - gets; got != 0 {
		t.Errorf("pulling the kept image again fetched %d blobs, want 0", got)
	}
	gets = reg.BlobGETs()
	h.ok("image", "pull", refGone, "--kernel", kernel, "--size", "64M")
	if got := reg.BlobGETs() - gets; got != 2 { // its config and its own layer
		t.Errorf("pulling the deleted image again fetched %d blobs, want 2 (its config and own layer)", got)
	}
	if out := h.ok("events", "-n", "5"); !strings.Contains(out, "pruned 3 blobs") {
		t.Errorf("events after the prune:\n%s", out)
	}
}
