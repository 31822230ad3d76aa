package daemon

import (
	"context"

	"banger/api"
)

// Templates belong to the VM manager (internal/daemon/vms/template.go)
// and to their image: deleting or pruning images removes them too.

// DeleteImage removes an image and its templates.
func (d *Daemon) DeleteImage(ctx context.Context, name string, force bool) error {
	if err := d.Service.DeleteImage(ctx, name, force); err != nil {
		return err
	}
	if _, _, err := d.Manager.RemoveTemplatesOf(ctx, name); err != nil {
		d.events.Event(ctx, "warn", "image/"+name, "removing the templates of image "+name+": "+err.Error()+"; 'banger image prune' tries again")
	}
	return nil
}

// PruneImages prunes the image caches and the templates of images that
// are gone.
func (d *Daemon) PruneImages(ctx context.Context) (api.PruneReport, error) {
	rep, err := d.Service.PruneImages(ctx)
	if err != nil {
		return rep, err
	}
	n, size, err := d.Manager.RemoveTemplatesOf(ctx, "")
	rep.Templates, rep.TemplateBytes = n, size
	if err != nil {
		rep.Warnings = append(rep.Warnings, "templates: "+err.Error())
	}
	return rep, nil
}
