package cli

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/bytesize"
)

func (a *app) kernelCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "kernel",
		Aliases: []string{"kernels"},
		Short:   "List, pull, publish and remove kernels (from a catalog or an OCI registry)",
		Long: `Kernels come from a catalog (a JSON index built into banger plus the one at
kernel_catalog_url in the config) or from any OCI registry, where 'banger
kernel publish' puts them. Pulled kernels are verified (size and sha256)
and stored by the daemon; images reference them with --kernel-ref.`,
	}
	cmd.AddCommand(a.kernelListCmd(), a.kernelPullCmd(), a.kernelPublishCmd(), a.kernelRmCmd())
	return cmd
}

func (a *app) kernelListCmd() *cobra.Command {
	var asJSON, available, insecure bool
	cmd := &cobra.Command{
		Use:     "list [--available [REGISTRY/REPOSITORY]]",
		Aliases: []string{"ls"},
		Short:   "List pulled kernels, or with --available those the catalog (or a registry repository) offers",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && !available {
				return errdefs.Invalid("a repository's kernels are listed with --available: banger kernel list --available %s", args[0])
			}
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			if available && len(args) == 1 {
				tags, err := cl.KernelTags(cmd.Context(), args[0], insecure)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(a.stdout, tags)
				}
				rows := [][]string{{"REFERENCE"}}
				for _, t := range tags.Tags {
					rows = append(rows, []string{tags.Repository + ":" + t})
				}
				return table(a.stdout, rows)
			}
			if available {
				cat, err := cl.Catalog(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(a.stdout, cat.Kernels)
				}
				if len(cat.Kernels) == 0 {
					fmt.Fprintln(a.stderr, "the kernel catalog is empty; set kernel_catalog_url in the config (see docs/kernel-catalog.md)")
				}
				rows := [][]string{{"NAME", "VERSION", "ARCH", "SIZE", "PULLED", "DESCRIPTION"}}
				for _, e := range cat.Kernels {
					rows = append(rows, []string{e.Name, e.Version, e.Arch, bytesize.Format(e.Kernel.Size), yesNo(e.Pulled), e.Description})
				}
				return table(a.stdout, rows)
			}
			ks, err := cl.Kernels(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, ks)
			}
			rows := [][]string{{"NAME", "VERSION", "ARCH", "SIZE", "PULLED"}}
			for _, k := range ks {
				rows = append(rows, []string{k.Name, k.Version, k.Arch, bytesize.Format(k.Size), ago(k.CreatedAt)})
			}
			return table(a.stdout, rows)
		},
	}
	cmd.Flags().BoolVar(&available, "available", false, "list the kernels the catalog offers, or the tags of a registry repository")
	cmd.Flags().BoolVar(&insecure, "insecure", false, "allow plain HTTP or an untrusted certificate (registries on loopback or a private network only)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) kernelPullCmd() *cobra.Command {
	var asJSON, insecure bool
	var name string
	cmd := &cobra.Command{
		Use:   "pull NAME|REGISTRY/REPOSITORY:TAG",
		Short: "Download a catalog kernel or one published to an OCI registry (verified, resumable)",
		Args:  exactArgs(1, "a kernel name from 'banger kernel list --available', or a registry reference like ghcr.io/org/kernels:6.12-fc"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			pv := newProgressView(a.stderr)
			k, err := cl.PullKernelRef(cmd.Context(), api.KernelPullRequest{Ref: args[0], Name: name, Insecure: insecure}, pv.Event)
			pv.Close()
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, k)
			}
			fmt.Fprintf(a.stdout, "pulled kernel %s %s (%s)\n", safe(k.Name), safe(k.Version), bytesize.Format(k.Size))
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "store a kernel from a registry under this name (default: the name it was published with)")
	cmd.Flags().BoolVar(&insecure, "insecure", false, "allow plain HTTP or an untrusted certificate (registries on loopback or a private network only)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the kernel as JSON")
	return cmd
}

func (a *app) kernelPublishCmd() *cobra.Command {
	var asJSON bool
	var req api.KernelPublishRequest
	cmd := &cobra.Command{
		Use:   "publish NAME REGISTRY/REPOSITORY:TAG",
		Short: "Push a kernel to an OCI registry as a banger kernel artifact",
		Long: `Pushes the pulled kernel NAME, or with --kernel the given files under NAME, to
a registry as an OCI artifact (banger's media types: the kernel, an optional
initrd, the modules tree and a config fragment, with its name, version and
arch). Registry credentials come from the docker config (docker login).
Anyone can then 'banger kernel pull' it by that reference.`,
		Args: exactArgs(2, "a kernel name and a registry reference, like: banger kernel publish fc-6.12 ghcr.io/org/kernels:6.12-fc"),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, p := range []*string{&req.Kernel, &req.Initrd, &req.Modules, &req.Config} {
				if *p != "" {
					abs, err := filepath.Abs(*p)
					if err != nil {
						return err
					}
					*p = abs
				}
			}
			req.Ref = args[1]
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			pv := newProgressView(a.stderr)
			out, err := cl.PublishKernel(cmd.Context(), args[0], req, pv.Event)
			pv.Close()
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, out)
			}
			fmt.Fprintf(a.stdout, "published kernel %s as %s\n", safe(out.Name), safe(out.Ref))
			return nil
		},
	}
	cmd.Flags().StringVar(&req.Kernel, "kernel", "", "publish this kernel file (vmlinux or bzImage) instead of a pulled kernel")
	cmd.Flags().StringVar(&req.Initrd, "initrd", "", "with --kernel: an initrd")
	cmd.Flags().StringVar(&req.Modules, "modules", "", "with --kernel: the kernel's modules tree (a directory)")
	cmd.Flags().StringVar(&req.Config, "config", "", "a kernel config fragment to publish with it")
	cmd.Flags().StringVar(&req.Version, "version", "", "with --kernel: the kernel's version")
	cmd.Flags().StringVar(&req.Description, "description", "", "with --kernel: a description")
	cmd.Flags().BoolVar(&req.Insecure, "insecure", false, "allow plain HTTP or an untrusted certificate (registries on loopback or a private network only)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func (a *app) kernelRmCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm NAME",
		Aliases: []string{"delete"},
		Short:   "Remove a pulled kernel",
		Args:    exactArgs(1, "a kernel name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			if err := cl.RemoveKernel(cmd.Context(), args[0], force); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "removed kernel %s\n", args[0])
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "remove even if images boot with it")
	return cmd
}
