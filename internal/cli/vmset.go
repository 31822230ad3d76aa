package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"banger/api"
	"banger/api/errdefs"
)

func (a *app) vmSetCmd() *cobra.Command {
	var keepAlive bool
	cmd := &cobra.Command{
		Use:   "set NAME --keep-alive=true|false",
		Short: "Change a VM's settings",
		Long: `Change a VM's settings. --keep-alive exempts the VM from being stopped
when idle (auto_stop_stale_after); --keep-alive=false subjects it again.`,
		Example: `  banger vm set dev --keep-alive
  banger vm set dev --keep-alive=false`,
		Args: exactArgs(1, "a VM name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("keep-alive") {
				return errdefs.Invalid("nothing to set; pass --keep-alive=true or --keep-alive=false")
			}
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			v, err := cl.UpdateVM(cmd.Context(), args[0], api.UpdateVMRequest{KeepAlive: &keepAlive})
			if err != nil {
				return err
			}
			if v.KeepAlive {
				fmt.Fprintf(a.stdout, "vm %s is kept alive: it is never stopped for being idle\n", v.Name)
			} else {
				fmt.Fprintf(a.stdout, "vm %s may be stopped when idle (auto_stop_stale_after)\n", v.Name)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&keepAlive, "keep-alive", false, "never stop this VM for being idle")
	return cmd
}
