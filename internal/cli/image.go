package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/bytesize"
	"banger/internal/image"
)

func (a *app) imageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "image",
		Aliases: []string{"images"},
		Short:   "Register, list, promote, delete and prune images (rootfs + kernel sets)",
	}
	cmd.AddCommand(a.imageRegisterCmd(), a.imagePullCmd(), a.imageBuildCmd(), a.imageListCmd(), a.imageShowCmd(), a.imagePromoteCmd(), a.imageDeleteCmd(), a.imagePruneCmd(), a.imageSnapshotCmd())
	return cmd
}

func (a *app) imageRegisterCmd() *cobra.Command {
	var req api.RegisterImageRequest
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "register --name NAME --rootfs PATH (--kernel PATH | --kernel-ref NAME)",
		Short: "Register an image made of existing host files (unmanaged)",
		Long: `Register an image made of existing host files. The files stay where they are
(an unmanaged image); 'banger image promote' copies them into daemon-owned storage.

The rootfs and work-seed must be ext4 images; the kernel an ELF vmlinux or a
bzImage. With --kernel-ref the kernel, initrd and modules come from a kernel
pulled with 'banger kernel pull'.`,
		Example: `  banger image register --name base --rootfs /srv/rootfs.ext4 --kernel /srv/vmlinux \
    --initrd /srv/initrd.img --modules /srv/modules
  banger image register --name base --rootfs /srv/rootfs.ext4 --kernel-ref void-6.12`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, p := range []*string{&req.Rootfs, &req.WorkSeed, &req.Kernel, &req.Initrd, &req.Modules} {
				if *p != "" {
					abs, err := filepath.Abs(*p)
					if err != nil {
						return err
					}
					*p = abs
				}
			}
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			im, err := cl.RegisterImage(cmd.Context(), req)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, im)
			}
			fmt.Fprintf(a.stdout, "registered image %s\n", im.Name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Name, "name", "", "image name (a DNS label)")
	f.StringVar(&req.Rootfs, "rootfs", "", "path of the root filesystem (ext4)")
	f.StringVar(&req.WorkSeed, "work-seed", "", "path of an ext4 image that seeds each VM's /root disk")
	f.StringVar(&req.Kernel, "kernel", "", "path of the kernel (vmlinux or bzImage)")
	f.StringVar(&req.Initrd, "initrd", "", "path of the initrd")
	f.StringVar(&req.Modules, "modules", "", "directory of kernel modules")
	f.StringVar(&req.KernelRef, "kernel-ref", "", "name of a pulled kernel to boot with (see 'banger kernel list')")
	f.BoolVar(&asJSON, "json", false, "print the image as JSON")
	cmd.MarkFlagRequired("name")
	cmd.MarkFlagRequired("rootfs")
	cmd.MarkFlagsMutuallyExclusive("kernel", "kernel-ref")
	return cmd
}

func (a *app) imageListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List images",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			ims, err := cl.Images(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, ims)
			}
			rows := [][]string{{"NAME", "MANAGED", "SOURCE", "SIZE", "KERNEL", "CREATED"}}
			for _, im := range ims {
				k := filepath.Base(im.Kernel)
				if im.KernelRef != "" {
					k = im.KernelRef
				}
				rows = append(rows, []string{im.Name, yesNo(im.Managed), im.Source, bytesize.Format(im.Size), k, ago(im.CreatedAt)})
			}
			if err := table(a.stdout, rows); err != nil {
				return err
			}
			return a.printTemplates(cmd.Context(), cl)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) imageShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show an image's files and origin",
		Args:  exactArgs(1, "an image name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			im, err := cl.Image(cmd.Context(), args[0])
			if errors.Is(err, errdefs.ErrNotFound) {
				if ok, terr := a.showTemplate(cmd.Context(), cl, args[0], asJSON); ok {
					return terr
				}
			}
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, im)
			}
			return table(a.stdout, [][]string{
				{"name:", im.Name},
				{"managed:", yesNo(im.Managed) + dirNote(im.Dir)},
				{"source:", im.Source},
				{"rootfs:", im.Rootfs + " (" + bytesize.Format(im.Size) + ")"},
				{"work-seed:", orDash(im.WorkSeed)},
				{"kernel:", im.Kernel + refNote(im.KernelRef)},
				{"initrd:", orDash(im.Initrd)},
				{"modules:", orDash(im.Modules)},
				{"digest:", orDash(im.Digest)},
				{"tools:", toolsNote(im.Tools, im.ToolVersions)},
				{"created:", im.CreatedAt.Local().Format("2006-01-02 15:04:05")},
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) imagePromoteCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "promote NAME",
		Short: "Copy an unmanaged image's files into daemon-owned storage",
		Long: `Copy an unmanaged image's files into a directory the daemon owns, so the image
no longer depends on the original paths. The copy is atomic: until it is
complete the image keeps pointing at the original files.`,
		Args: exactArgs(1, "an image name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			pv := newProgressView(a.stderr)
			im, err := cl.PromoteImage(cmd.Context(), args[0], pv.Event)
			pv.Close()
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, im)
			}
			fmt.Fprintf(a.stdout, "promoted image %s to %s\n", im.Name, im.Dir)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the image as JSON")
	return cmd
}

func (a *app) imageDeleteCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete an image (a managed image's files too; an unmanaged image's files are kept) and its templates, or a template",
		Args:    exactArgs(1, "an image name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			err = cl.DeleteImage(cmd.Context(), args[0], force)
			if errors.Is(err, errdefs.ErrNotFound) {
				if terr := cl.DeleteTemplate(cmd.Context(), args[0]); !errors.Is(terr, errdefs.ErrNotFound) {
					if terr == nil {
						fmt.Fprintf(a.stdout, "deleted template %s\n", args[0])
					}
					return terr
				}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "deleted image %s\n", args[0])
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "delete even if VMs use the image")
	return cmd
}

func (a *app) imagePruneCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Free the cache space held for images that are gone",
		Long: `Remove from banger's caches what no registered image needs:

  - oci cache (~/.cache/banger/oci): layers, configs and manifests no pulled
    image uses. Everything the registered images were pulled from stays, so
    pulling one of them again downloads nothing;
  - build cache (~/.cache/banger/build): steps cached by builds of images
    that are not registered (deleted, or never built successfully). The
    steps of registered images stay, so rebuilding one of them reuses them;
  - leftovers of pulls, builds and default root filesystem preparations that
    were interrupted.

Registered images lose nothing: each has its own files. The prune waits for
the pulls and builds in progress to finish, and holds new ones while it runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			rep, err := cl.PruneImages(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, rep)
			}
			fmt.Fprintf(a.stdout, "oci cache: removed %s, %s\n", plural(rep.OCIBlobs, "blob"), bytesize.Format(rep.OCIBytes))
			fmt.Fprintf(a.stdout, "build cache: removed %s, %s\n", plural(rep.BuildSteps, "step"), bytesize.Format(rep.BuildBytes))
			fmt.Fprintf(a.stdout, "interrupted operations: removed %s, %s\n", plural(rep.Leftovers, "leftover"), bytesize.Format(rep.LeftoverBytes))
			if rep.Templates > 0 {
				fmt.Fprintf(a.stdout, "templates of deleted images: removed %s, %s\n", plural(rep.Templates, "template"), bytesize.Format(rep.TemplateBytes))
			}
			for _, w := range rep.Warnings {
				fmt.Fprintln(a.stderr, "warning:", safe(w))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func dirNote(dir string) string {
	if dir == "" {
		return ""
	}
	return " (" + dir + ")"
}

func refNote(ref string) string {
	if ref == "" {
		return ""
	}
	return " (kernel " + ref + ")"
}

// toolsNote says which devbox tools an image holds, each with the version
// the devbox build pinned when the image records one, and which it lacks.
func toolsNote(tools []string, versions map[string]string) string {
	have := make([]string, len(tools))
	for i, t := range tools {
		have[i] = t
		if v := versions[t]; v != "" {
			have[i] += " " + v
		}
	}
	switch missing := image.MissingTools(tools); {
	case tools == nil:
		return "unknown (recorded before banger looked for them)"
	case len(missing) == 0:
		return strings.Join(have, ", ")
	case len(tools) == 0:
		return "none (no " + strings.Join(missing, ", ") + ")"
	default:
		return strings.Join(have, ", ") + "; missing: " + strings.Join(missing, ", ")
	}
}
