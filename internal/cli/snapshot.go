package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"banger/api"
	"banger/internal/bytesize"
)

// Pause, resume and suspend (docs/vms.md, "Pause, suspend and resume").
// Suspend is 'vm stop --suspend'; a suspended VM resumes with 'vm start',
// which never boots over the saved state: 'vm start --cold' discards it.

func (a *app) vmPauseCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "pause NAME",
		Short: "Freeze a running VM's CPUs (it keeps its memory, network and sessions)",
		Args:  exactArgs(1, "a VM name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			v, err := cl.PauseVM(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.printVMState(v, asJSON, "resume it with 'banger vm resume "+v.Name+"'")
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the VM as JSON")
	return cmd
}

func (a *app) vmResumeCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "resume NAME",
		Short: "Thaw a paused VM",
		Args:  exactArgs(1, "a VM name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			v, err := cl.ResumeVM(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.printVMState(v, asJSON, "")
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the VM as JSON")
	return cmd
}

// suspendVM is 'vm stop --suspend'.
func (a *app) suspendVM(cmd *cobra.Command, name string, asJSON bool) error {
	cl, err := a.client(cmd.Context())
	if err != nil {
		return err
	}
	pv := newProgressView(a.stderr)
	v, err := cl.SuspendVM(cmd.Context(), name, pv.Event)
	pv.Close()
	if err != nil {
		return err
	}
	return a.printVMState(v, asJSON, fmt.Sprintf("%s saved; 'banger vm start %s' resumes it", bytesize.Format(v.StateBytes), v.Name))
}

// printVMState prints the VM as JSON, or its state and a hint.
func (a *app) printVMState(v api.VM, asJSON bool, hint string) error {
	if asJSON {
		return printJSON(a.stdout, v)
	}
	if hint != "" {
		hint = " (" + hint + ")"
	}
	_, err := fmt.Fprintf(a.stdout, "vm %s is %s%s\n", v.Name, v.State, hint)
	return err
}
