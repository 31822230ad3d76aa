package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/authsync"
)

// authSyncFlags are vm create's and vm run's --auth-sync and
// --no-auth-sync.
type authSyncFlags struct {
	tools string
	off   bool
}

func (f *authSyncFlags) add(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.tools, "auth-sync", "", "coding agents whose host credentials the VM gets at each boot: any of "+
		strings.Join(authsync.All(), ",")+" (default: auth_sync from the config; none for images pulled from a registry)")
	fs.BoolVar(&f.off, "no-auth-sync", false, "copy no host credentials into the VM")
}

// request returns the create request's AuthSync: nil for the default.
func (f *authSyncFlags) request(cmd *cobra.Command) (*[]string, error) {
	set := cmd.Flags().Changed("auth-sync")
	switch {
	case set && f.off:
		return nil, errdefs.Invalid("--auth-sync and --no-auth-sync contradict each other; pass one")
	case f.off:
		return &[]string{}, nil
	case !set:
		return nil, nil
	}
	tools, err := authsync.Parse(f.tools)
	if err != nil {
		return nil, errdefs.Invalid("--auth-sync: %v", err)
	}
	if len(tools) == 0 {
		return nil, errdefs.Invalid("--auth-sync names no tool; pass some of %s, or --no-auth-sync", strings.Join(authsync.All(), ","))
	}
	return &tools, nil
}

func (a *app) vmAuthCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "auth",
		Short: "Copy the host's coding-agent credentials into VMs",
	}
	cmd.AddCommand(a.vmAuthSyncCmd(), a.vmAuthSetCmd())
	return cmd
}

func (a *app) vmAuthSyncCmd() *cobra.Command {
	var tools string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "sync NAME",
		Short: "Copy the host's coding-agent credentials into a running VM now",
		Long: `Copy the credential files of opencode (~/.local/share/opencode/auth.json),
claude (~/.claude/.credentials.json) and pi (~/.pi/agent/auth.json) from
your home to the same place under /root in a running VM, mode 0600, without
restarting it. Only files present on the host are copied.

Without --tools it copies those of the VM's auth_sync list ('banger vm show'),
or of every tool when the VM has auth sync off. It does not change what the
VM receives at its next boot. The event log records the files copied,
never their content.`,
		Example: `  banger vm auth sync dev
  banger vm auth sync dev --tools opencode`,
		Args: exactArgs(1, "a VM name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			names, err := authsync.Parse(tools)
			if err != nil {
				return errdefs.Invalid("--tools: %v", err)
			}
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := cl.AuthSync(cmd.Context(), args[0], names)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, res)
			}
			if len(res.Files) == 0 {
				fmt.Fprintf(a.stdout, "copied nothing into vm %s: the host has none of %s\n", res.VM, strings.Join(res.Missing, ", "))
				return nil
			}
			fmt.Fprintf(a.stdout, "copied into vm %s (mode 0600): %s\n", res.VM, strings.Join(res.Files, ", "))
			if len(res.Missing) > 0 {
				fmt.Fprintf(a.stdout, "not on this host: %s\n", strings.Join(res.Missing, ", "))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&tools, "tools", "", "coding agents to copy credentials of: any of "+strings.Join(authsync.All(), ","))
	cmd.Flags().BoolVar(&asJSON, "json", false, "print what was copied as JSON")
	return cmd
}

func (a *app) vmAuthSetCmd() *cobra.Command {
	var auth authSyncFlags
	cmd := &cobra.Command{
		Use:   "set NAME --auth-sync LIST | --no-auth-sync",
		Short: "Change which coding agents' credentials a VM receives at each boot",
		Long: `Change a VM's auth sync list, which 'vm create --auth-sync' or the default
set. It applies from the VM's next boot; nothing is copied into or removed
from a running guest ('banger vm auth sync NAME' copies now).`,
		Example: `  banger vm auth set dev --auth-sync opencode,claude
  banger vm auth set dev --no-auth-sync`,
		Args: exactArgs(1, "a VM name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			tools, err := auth.request(cmd)
			if err != nil {
				return err
			}
			if tools == nil {
				return errdefs.Invalid("nothing to set; pass --auth-sync %s (some of them) or --no-auth-sync", strings.Join(authsync.All(), ","))
			}
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			v, err := cl.SetAuthSync(cmd.Context(), args[0], *tools)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "vm %s: auth sync %s from its next boot\n", v.Name, authsync.Describe(v.AuthSync))
			return nil
		},
	}
	auth.add(cmd)
	return cmd
}

// authNextStep is vm run's line for coding agents the image has but whose
// credentials the VM does not get; "" when there are none, or when the
// daemon did not say (AuthSync nil). imageTools nil means unknown.
func authNextStep(vm api.VM, imageTools []string) string {
	if vm.AuthSync == nil {
		return ""
	}
	var lacking []string
	for _, t := range authsync.All() {
		if (imageTools == nil || slices.Contains(imageTools, t)) && !slices.Contains(vm.AuthSync, t) {
			lacking = append(lacking, t)
		}
	}
	if len(lacking) == 0 {
		return ""
	}
	list := strings.Join(lacking, ",")
	return fmt.Sprintf("\ncredentials: vm %[1]s gets none of yours for %[2]s (auth sync: %[3]s); to copy them in:\n  banger vm auth sync %[1]s --tools %[2]s\n",
		vm.Name, list, authsync.Describe(vm.AuthSync))
}
