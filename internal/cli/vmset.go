package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"banger/api"
	"banger/api/errdefs"
)

func (a *app) vmSetCmd() *cobra.Command {
	var keepAlive bool
	var nf networkFlags
	cmd := &cobra.Command{
		Use:   "set NAME [--keep-alive=true|false] [--network full|none|allow [--allow NAME_OR_CIDR]... [--allow-lan]]",
		Short: "Change a VM's settings",
		Long: `Change a VM's settings. --keep-alive exempts the VM from being stopped
when idle (auto_stop_stale_after); --keep-alive=false subjects it again.

--network replaces the VM's egress policy (with its --allow list and
--allow-lan); a running VM gets it at once, without a reboot. Connections
already open stay open.`,
		Example: `  banger vm set dev --keep-alive
  banger vm set dev --keep-alive=false
  banger vm set dev --network allow --allow registry.npmjs.org --allow '*.github.com'
  banger vm set dev --network none`,
		Args: exactArgs(1, "a VM name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var req api.UpdateVMRequest
			if cmd.Flags().Changed("keep-alive") {
				req.KeepAlive = &keepAlive
			}
			req.Network = nf.policy(cmd.Flags())
			if req.KeepAlive == nil && req.Network == nil {
				return errdefs.Invalid("nothing to set; pass --keep-alive=true|false or --network full|none|allow")
			}
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			v, err := cl.UpdateVM(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			if req.KeepAlive != nil {
				if v.KeepAlive {
					fmt.Fprintf(a.stdout, "vm %s is kept alive: it is never stopped for being idle\n", v.Name)
				} else {
					fmt.Fprintf(a.stdout, "vm %s may be stopped when idle (auto_stop_stale_after)\n", v.Name)
				}
			}
			if req.Network != nil {
				for _, r := range networkRows(v) {
					if r[0] != "" {
						fmt.Fprintf(a.stdout, "vm %s %s %s\n", v.Name, r[0], r[1])
					} else {
						fmt.Fprintf(a.stdout, "  %s\n", r[1])
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&keepAlive, "keep-alive", false, "never stop this VM for being idle")
	nf.add(cmd.Flags())
	return cmd
}
