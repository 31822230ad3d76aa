package server

import (
	"context"
	"errors"
	"strings"
	"testing"

	"banger/api"
	"banger/api/errdefs"
)

// TestTemplateRoutes saves a template (with its progress stream), lists,
// shows and deletes it through the typed client over the real socket, on
// the fake VMM; errors keep their kinds.
func TestTemplateRoutes(t *testing.T) {
	w, cl := serve(t)
	ctx := context.Background()
	w.CreateVM(t, "dev")

	var steps []string
	tpl, err := cl.SnapshotVM(ctx, "dev", "tpl", func(e api.Event) { steps = append(steps, e.Step) })
	if err != nil || tpl.Name != "tpl" || tpl.Image != "default" || tpl.Bytes <= 0 {
		t.Fatalf("SnapshotVM = %+v, %v", tpl, err)
	}
	if !strings.Contains(strings.Join(steps, " "), "save") {
		t.Errorf("snapshot progress = %v; want a save step", steps)
	}
	if ts, err := cl.Templates(ctx); err != nil || len(ts) != 1 || ts[0].Name != "tpl" {
		t.Errorf("Templates = %+v, %v", ts, err)
	}
	if got, err := cl.Template(ctx, "tpl"); err != nil || got.Bytes != tpl.Bytes {
		t.Errorf("Template = %+v, %v", got, err)
	}
	if _, err := cl.SnapshotVM(ctx, "dev", "default", nil); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("a template named as an image: %v, want a conflict", err)
	}
	if _, err := cl.SnapshotVM(ctx, "nope", "t2", nil); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("a template of a missing vm: %v, want not found", err)
	}
	if err := cl.DeleteTemplate(ctx, "tpl"); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Template(ctx, "tpl"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Template after delete: %v, want not found", err)
	}
}
