package daemon

import (
	"context"

	"banger/api"
)

// Images lists the images, each with its templates: the list the API,
// the CLI's 'image list --json' and the web UI show.
func (d *Daemon) Images(ctx context.Context) ([]api.Image, error) {
	ims, err := d.Service.Images(ctx)
	if err != nil {
		return nil, err
	}
	ts, err := d.Manager.Templates(ctx)
	if err != nil {
		return nil, err
	}
	for i := range ims {
		ims[i].Templates = templatesOf(ts, ims[i].Name)
	}
	return ims, nil
}

// Image returns an image with its templates.
func (d *Daemon) Image(ctx context.Context, name string) (api.Image, error) {
	im, err := d.Service.Image(ctx, name)
	if err != nil {
		return im, err
	}
	ts, err := d.Manager.Templates(ctx)
	if err != nil {
		return api.Image{}, err
	}
	im.Templates = templatesOf(ts, name)
	return im, nil
}

// templatesOf picks image's templates out of ts; nil for none.
func templatesOf(ts []api.Template, image string) []api.Template {
	var out []api.Template
	for _, t := range ts {
		if t.Image == image {
			out = append(out, t)
		}
	}
	return out
}

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
