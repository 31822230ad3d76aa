package server

import (
	"context"
	"encoding/json"
	"testing"
)

// TestImagesCarryTheirTemplates: GET /v1/images and /v1/images/{name}
// give each image its templates, and the answer is still the array of
// images that clients from before templates decode.
func TestImagesCarryTheirTemplates(t *testing.T) {
	w, cl := serve(t)
	ctx := context.Background()
	w.CreateVM(t, "dev")
	ims, err := cl.Images(ctx)
	if err != nil || len(ims) != 1 || ims[0].Templates != nil {
		t.Fatalf("Images before a template = %+v, %v; want default without templates", ims, err)
	}
	tpl, err := cl.SnapshotVM(ctx, "dev", "tpl", nil)
	if err != nil {
		t.Fatal(err)
	}
	ims, err = cl.Images(ctx)
	if err != nil || len(ims) != 1 || len(ims[0].Templates) != 1 {
		t.Fatalf("Images = %+v, %v; want default with template tpl", ims, err)
	}
	if got := ims[0].Templates[0]; got.Name != "tpl" || got.Bytes != tpl.Bytes || got.StateBytes != tpl.StateBytes || got.StateBytes <= 0 {
		t.Errorf("listed template = %+v, want tpl with its sizes %d/%d", got, tpl.Bytes, tpl.StateBytes)
	}
	im, err := cl.Image(ctx, "default")
	if err != nil || len(im.Templates) != 1 || im.Templates[0].Name != "tpl" {
		t.Errorf("Image(default) = %+v, %v; want its template", im, err)
	}
	// What a client written before templates decodes.
	b, _ := json.Marshal(ims)
	var old []struct {
		Name string `json:"name"`
		Size int64  `json:"size"`
	}
	if err := json.Unmarshal(b, &old); err != nil || len(old) != 1 || old[0].Name != "default" {
		t.Errorf("the list as an older client reads it: %+v, %v", old, err)
	}
	if err := cl.DeleteTemplate(ctx, "tpl"); err != nil {
		t.Fatal(err)
	}
	if ims, err := cl.Images(ctx); err != nil || ims[0].Templates != nil {
		t.Errorf("Images after the delete = %+v, %v; want no templates", ims, err)
	}
}
