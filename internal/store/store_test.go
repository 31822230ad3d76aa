package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"banger/api"
)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestImagesRoundTripAndReopen(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	want := api.Image{Name: "base", Rootfs: "/r.ext4", Kernel: "/vmlinux", Source: "register", Size: 42}
	if err := s.Tx(ctx, func(tx *Tx) error { return tx.PutImage(ctx, want) }); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s2, err := Open(ctx, path) // migrations must be idempotent
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err := s2.Image(ctx, "base")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(api.Image{}, "CreatedAt", "UpdatedAt")); diff != "" {
		t.Errorf("image mismatch (-want +got):\n%s", diff)
	}
	if got.CreatedAt.IsZero() || time.Since(got.CreatedAt) > time.Hour {
		t.Errorf("CreatedAt = %v, want a recent time", got.CreatedAt)
	}
	if _, err := s2.Image(ctx, "missing"); !errors.Is(err, ErrNoRow) {
		t.Errorf("Image(missing) err = %v, want ErrNoRow", err)
	}
}

func TestTxRollsBackOnError(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	boom := errors.New("boom")
	err := s.Tx(ctx, func(tx *Tx) error {
		if err := tx.PutImage(ctx, api.Image{Name: "x", Rootfs: "/r", Source: "register"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Tx err = %v, want boom", err)
	}
	ims, err := s.Images(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ims) != 0 {
		t.Errorf("images after rollback = %v, want none", ims)
	}
}

func TestKernelsAndReferences(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	err := s.Tx(ctx, func(tx *Tx) error {
		if err := tx.PutKernel(ctx, api.Kernel{Name: "k1", Dir: "/d", Kernel: "/d/vmlinux"}); err != nil {
			return err
		}
		return tx.PutImage(ctx, api.Image{Name: "a", Rootfs: "/r", KernelRef: "k1", Source: "register"})
	})
	if err != nil {
		t.Fatal(err)
	}
	users, err := s.ImagesUsingKernel(ctx, "k1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a"}, users); diff != "" {
		t.Errorf("users (-want +got):\n%s", diff)
	}
	ks, _ := s.Kernels(ctx)
	if len(ks) != 1 || ks[0].Kernel != "/d/vmlinux" {
		t.Errorf("kernels = %+v", ks)
	}
}

func TestEventsOrderAndFilter(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	for _, e := range []struct{ subj, msg string }{{"vm/a", "one"}, {"vm/b", "two"}, {"vm/a", "three"}} {
		if err := s.Tx(ctx, func(tx *Tx) error { return tx.AddEvent(ctx, "info", e.subj, e.msg) }); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Events(ctx, "vm/a", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, e := range got {
		msgs = append(msgs, e.Message)
	}
	if diff := cmp.Diff([]string{"one", "three"}, msgs); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	latest, _ := s.Events(ctx, "", 0, 1)
	if len(latest) != 1 || latest[0].Message != "three" {
		t.Errorf("latest = %+v, want the newest event", latest)
	}
}

// TestImageToolsKeepUnknownApartFromNone: an image recorded before banger
// looked for tools (nil) reads back as unknown, not as "none".
func TestImageToolsKeepUnknownApartFromNone(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	for _, tools := range [][]string{nil, {}, {"opencode"}, {"mise", "opencode", "claude", "pi"}} {
		want := api.Image{Name: "x", Rootfs: "/r", Source: "register", Tools: tools}
		if err := s.Tx(ctx, func(tx *Tx) error { return tx.PutImage(ctx, want) }); err != nil {
			t.Fatal(err)
		}
		got, err := s.Image(ctx, "x")
		if err != nil {
			t.Fatal(err)
		}
		if (got.Tools == nil) != (tools == nil) || !cmp.Equal(got.Tools, tools, cmpopts.EquateEmpty()) {
			t.Errorf("tools %#v read back as %#v", tools, got.Tools)
		}
	}
}

// TestImageToolVersionsRoundTrip: each tool's recorded version comes back
// with it; a tool without one has none, and a row written with names alone
// (before versions were recorded) reads as tools without versions.
func TestImageToolVersionsRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	want := api.Image{Name: "x", Rootfs: "/r", Source: "build", Tools: []string{"mise", "opencode", "pi"},
		ToolVersions: map[string]string{"opencode": "1.18.33", "pi": "0.73.1"}}
	if err := s.Tx(ctx, func(tx *Tx) error { return tx.PutImage(ctx, want) }); err != nil {
		t.Fatal(err)
	}
	got, err := s.Image(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(got.Tools, want.Tools) || !cmp.Equal(got.ToolVersions, want.ToolVersions) {
		t.Errorf("read back tools %v versions %v; want %v %v", got.Tools, got.ToolVersions, want.Tools, want.ToolVersions)
	}
	if tools, versions := decodeTools("mise,opencode"); !cmp.Equal(tools, []string{"mise", "opencode"}) || versions != nil {
		t.Errorf("an old row: %v %v", tools, versions)
	}
}
