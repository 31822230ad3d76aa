package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"banger/internal/bytesize"
)

func (a *app) kernelCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "kernel",
		Aliases: []string{"kernels"},
		Short:   "List, pull and remove kernels from the kernel catalog",
		Long: `Kernels come from a catalog: a JSON index built into banger plus the one at
kernel_catalog_url in the config. Pulled kernels are verified (size and
sha256) and stored by the daemon; images reference them with --kernel-ref.`,
	}
	cmd.AddCommand(a.kernelListCmd(), a.kernelPullCmd(), a.kernelRmCmd())
	return cmd
}

func (a *app) kernelListCmd() *cobra.Command {
	var asJSON, available bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List pulled kernels, or with --available those the catalog offers",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
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
	cmd.Flags().BoolVar(&available, "available", false, "list the kernels the catalog offers")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) kernelPullCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "pull NAME",
		Short: "Download a catalog kernel (verified, resumable)",
		Args:  exactArgs(1, "a kernel name from 'banger kernel list --available'"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			pv := newProgressView(a.stderr)
			k, err := cl.PullKernel(cmd.Context(), args[0], pv.Event)
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
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the kernel as JSON")
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
