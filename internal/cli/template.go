package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"banger/api"
	"banger/api/errdefs"
	"banger/client"
	"banger/internal/bytesize"
)

// Templates (docs/snapshots.md, "Templates"): 'image snapshot' keeps a
// VM's state as a template; 'image list', 'image show' and 'image
// delete' cover templates as well as images, as 'vm create --image'
// takes either.

func (a *app) imageSnapshotCmd() *cobra.Command {
	var name string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "snapshot VM --name TEMPLATE",
		Short: "Keep a running VM's memory and disks as a template its image's VMs start from warm",
		Long: `Keep a booted, idle VM's memory, device state and disks as a template of its
image. 'banger vm create --image TEMPLATE' and 'banger vm run --image TEMPLATE'
then restore it and give the new VM its own name, address, machine-id and SSH
host keys instead of booting. The VM is paused while its state is saved and its
disks copied, then runs on.`,
		Example: `  banger image snapshot dev --name dev-warm
  banger vm create --name api --image dev-warm`,
		Args: exactArgs(1, "a VM name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			pv := newProgressView(a.stderr)
			t, err := cl.SnapshotVM(cmd.Context(), args[0], name, pv.Event)
			pv.Close()
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, t)
			}
			_, err = fmt.Fprintf(a.stdout, "template %s of image %s saved (%s); start a vm from it with 'banger vm create --name NAME --image %s'\n",
				t.Name, t.Image, bytesize.Format(uint64(max(t.Bytes, 0))), t.Name)
			return err
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the template's name (a DNS label, not an image's name)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the template as JSON")
	cmd.MarkFlagRequired("name")
	return cmd
}

// printTemplates follows the image table with the templates, if any.
func (a *app) printTemplates(ctx context.Context, cl *client.Client) error {
	ts, err := cl.Templates(ctx)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil // a daemon from before templates
	}
	if err != nil || len(ts) == 0 {
		return err
	}
	rows := [][]string{{"TEMPLATE", "IMAGE", "FROM VM", "SIZE", "STATE", "MEMORY", "CREATED"}}
	for _, t := range ts {
		from := t.From
		if t.Auto {
			from += " (auto)"
		}
		rows = append(rows, []string{t.Name, t.Image, from, bytesize.Format(uint64(max(t.Bytes, 0))),
			bytesize.Format(uint64(max(t.StateBytes, 0))), fmt.Sprintf("%d MiB", t.MemoryMiB), ago(t.CreatedAt)})
	}
	fmt.Fprintln(a.stdout)
	return table(a.stdout, rows)
}

// showTemplate shows template name when no image has that name; ok is
// false when there is no such template either.
func (a *app) showTemplate(ctx context.Context, cl *client.Client, name string, asJSON bool) (ok bool, err error) {
	t, err := cl.Template(ctx, name)
	if errors.Is(err, errdefs.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return true, err
	}
	if asJSON {
		return true, printJSON(a.stdout, t)
	}
	rows := [][]string{
		{"template:", t.Name + " (" + t.Dir + ")"},
		{"image:", t.Image},
		{"from vm:", orDash(t.From) + autoNote(t)},
		{"size:", fmt.Sprintf("%s on disk, %s of it saved memory and device state", bytesize.Format(uint64(max(t.Bytes, 0))), bytesize.Format(uint64(max(t.StateBytes, 0))))},
		{"spare:", spareLine(t)},
		{"vm:", fmt.Sprintf("%d cpus, %d MiB memory, %s disk", t.CPUs, t.MemoryMiB, bytesize.Format(uint64(max(t.DiskBytes, 0))))},
		{"saved by:", t.VMM + " " + t.VMMVersion},
		{"created:", t.CreatedAt.Local().Format("2006-01-02 15:04:05")},
	}
	if t.MapFailure != nil {
		rows = append(rows, []string{"memory:", mapFailureLine(t)})
	}
	return true, table(a.stdout, rows)
}

// mapFailureLine says why the template's memory is not mapped and
// whether banger tries again; the error is the VMM's, escaped.
func mapFailureLine(t api.Template) string {
	f := t.MapFailure
	retry := "banger tries again at the next start"
	if !f.Retry {
		retry = "banger tries again only after an upgrade, or at the next start once " + safe(filepath.Join(t.Dir, "map-failed.json")) + " is removed"
	}
	return fmt.Sprintf("not mapped into a file, so warm creates read all of it: %s (%s, %s); %s",
		safe(f.Error), plural(f.Attempts, "failure"), ago(f.At), retry)
}

func autoNote(t api.Template) string {
	if t.Auto {
		return " (made automatically after the image's first boot; warm_templates = false turns this off)"
	}
	return ""
}

// spareLine says what the template's spare disks take.
func spareLine(t api.Template) string {
	if t.SpareBytes <= 0 {
		return "none now (the next warm create copies the disks, then one is made)"
	}
	return bytesize.Format(uint64(t.SpareBytes)) + " on disk: a copy of its disks made ahead, which the next warm create takes"
}
