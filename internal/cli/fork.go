package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"banger/api"
)

// 'vm fork' (docs/vms.md, "Fork").
func (a *app) vmForkCmd() *cobra.Command {
	var req api.ForkVMRequest
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "fork SRC --name NEW",
		Short: "Make a running, paused or suspended VM's twin: its memory, processes and disks, with its own name, address and keys",
		Args:  exactArgs(1, "the name of the VM to fork"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			pv := newProgressView(a.stderr)
			vm, err := cl.ForkVM(cmd.Context(), args[0], req, pv.Event)
			pv.Close()
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, vm)
			}
			fmt.Fprintf(a.stdout, "vm %s is running, forked from %s (ip %s)\nconnect with: banger vm ssh %s\n", vm.Name, args[0], orDash(vm.IP), vm.Name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Name, "name", "", "the new VM's name (a DNS label; it is reachable as NAME.vm)")
	f.BoolVar(&asJSON, "json", false, "print the new VM as JSON")
	cmd.MarkFlagRequired("name")
	return cmd
}
