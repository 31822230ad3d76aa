package daemon_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/daemon/images"
	"banger/internal/store"
	"banger/internal/vmm"
)

// Builds that run steps boot real guests (test/e2e); here: what is
// refused before any VM exists, and leaves nothing.
func TestBuildImageRefusals(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	dir := t.TempDir()
	script := filepath.Join(dir, "s.sh")
	os.WriteFile(script, []byte("true\n"), 0o644)
	cases := []struct {
		req  api.BuildImageRequest
		kind error
		msg  string
	}{
		{api.BuildImageRequest{Name: "x"}, errdefs.ErrInvalid, "--from-image is required"},
		{api.BuildImageRequest{Name: "Bad_Name", From: "default"}, errdefs.ErrInvalid, "image"},
		{api.BuildImageRequest{Name: "default", From: "default", NoDevbox: true, Scripts: []string{script}}, errdefs.ErrConflict, "already exists"},
		{api.BuildImageRequest{Name: "x", From: "nope"}, errdefs.ErrNotFound, "--from-image"},
		{api.BuildImageRequest{Name: "x", From: "default", NoDevbox: true}, errdefs.ErrInvalid, "nothing to build"},
		{api.BuildImageRequest{Name: "x", From: "default", NoDevbox: true, Docker: true, Scripts: []string{script}}, errdefs.ErrInvalid, "--docker"},
		{api.BuildImageRequest{Name: "x", From: "default", NoDevbox: true, Scripts: []string{"rel.sh"}}, errdefs.ErrInvalid, "absolute"},
		{api.BuildImageRequest{Name: "x", From: "default", NoDevbox: true, Scripts: []string{dir + "/missing.sh"}}, errdefs.ErrInvalid, "missing.sh"},
		{api.BuildImageRequest{Name: "x", From: "default", NoDevbox: true, Scripts: []string{script}, Files: []string{dir}}, errdefs.ErrInvalid, "--file"},
		{api.BuildImageRequest{Name: "x", From: "default", NoDevbox: true, Scripts: []string{script}, Size: 1 << 20}, errdefs.ErrInvalid, "--size"},
	}
	for _, c := range cases {
		_, err := w.D.BuildImage(ctx, c.req, nil)
		if !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("BuildImage(%+v) = %v; want %v mentioning %q", c.req, err, c.kind, c.msg)
		}
	}
	if vms, _ := w.D.VMs(ctx); len(vms) != 0 {
		t.Errorf("refused builds left vms %v", vms)
	}
	if ims, _ := w.D.Images(ctx); len(ims) != 1 {
		t.Errorf("refused builds left images %v", ims)
	}
	left, _ := filepath.Glob(filepath.Join(w.Opts.Layout.ImagesDir, ".staging-*"))
	if len(left) != 0 {
		t.Errorf("refused builds left %v", left)
	}
}

// A daemon that dies mid-build leaves a running builder VM and a staging
// directory; the next start removes both, and leaves other VMs alone.
func TestRestartRemovesInterruptedBuilder(t *testing.T) {
	w := newWorld(t)
	builder := w.create("build-0a1b2c3d")
	w.create("keep")
	row := mustRow(t, w, builder.Name)
	h := row.Handle
	staging := filepath.Join(w.Opts.Layout.ImagesDir, ".staging-build-devbox-01020304")
	os.MkdirAll(staging, 0o700)
	os.WriteFile(filepath.Join(staging, images.BuilderMarker), []byte(builder.Name+"\n"), 0o600)

	w.restart()
	if _, err := w.D.VM(context.Background(), builder.Name); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("builder vm row after restart: %v", err)
	}
	if _, err := os.Stat(row.Dir); !os.IsNotExist(err) {
		t.Errorf("builder vm directory left: %v", err)
	}
	if vmm.Alive(h.PID, h.StartTime) {
		t.Error("the builder vm's process survived the restart")
	}
	if _, err := os.Stat(staging); !os.IsNotExist(err) {
		t.Errorf("staging directory left: %v", err)
	}
	if v, err := w.D.VM(context.Background(), "keep"); err != nil || v.State != api.VMRunning {
		t.Errorf("another vm after the sweep: %+v, %v; want it running", v, err)
	}
}

func mustRow(t *testing.T, w *world, name string) store.VM {
	t.Helper()
	r, err := w.D.Row(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
