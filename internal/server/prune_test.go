package server

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"banger/internal/imagebuild"
)

// TestPruneRoute drives POST /v1/images/prune through the typed client
// over the real socket: the build step of an image that is gone is
// removed, the one of the registered image stays.
func TestPruneRoute(t *testing.T) {
	w, cl := serve(t)
	ctx := context.Background()

	src := t.TempDir()
	os.WriteFile(filepath.Join(src, imagebuild.RootfsFile), []byte("rootfs"), 0o600)
	os.WriteFile(filepath.Join(src, imagebuild.WorkSeedFile), []byte("work"), 0o600)
	cache := imagebuild.Cache{Dir: filepath.Join(w.Layout.CacheDir, "build")}
	for key, im := range map[string]string{"aaaaaaaaaaaaaaaa1": "default", "bbbbbbbbbbbbbbbb2": "deleted"} {
		if err := cache.Store(ctx, src, imagebuild.Entry{Key: key, Image: im, Step: "s"}); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := cl.PruneImages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.BuildSteps != 1 || rep.BuildBytes <= 0 || rep.OCIBlobs != 0 || rep.Leftovers != 0 || rep.Warnings != nil {
		t.Errorf("PruneImages = %+v; want the one step of the deleted image", rep)
	}
	if !cache.Has("aaaaaaaaaaaaaaaa1") || cache.Has("bbbbbbbbbbbbbbbb2") {
		t.Error("the prune removed the wrong build step")
	}
}
