package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/authsync"
	"banger/internal/bytesize"
)

func (a *app) vmCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "vm",
		Aliases: []string{"vms"},
		Short:   "Create, run, reach and remove development VMs",
	}
	cmd.AddCommand(a.vmCreateCmd(), a.vmListCmd(), a.vmShowCmd(), a.vmStartCmd(), a.vmStopCmd(),
		a.vmRestartCmd(), a.vmDeleteCmd(), a.vmSSHCmd(), a.vmLogsCmd(), a.vmPortsCmd(),
		a.vmStatsCmd(), a.vmSetCmd(), a.vmForwardCmd(), a.vmPauseCmd(), a.vmResumeCmd(), a.vmForkCmd(),
		a.vmRunCmd(), a.vmWorkspaceCmd(), a.vmSessionCmd(), a.vmACPCmd(), a.vmExecCmd(), a.vmCpCmd(), a.vmAuthCmd())
	return cmd
}

func (a *app) vmCreateCmd() *cobra.Command {
	var req api.CreateVMRequest
	var nf networkFlags
	var memory, diskSize string
	var asJSON bool
	var auth authSyncFlags
	cmd := &cobra.Command{
		Use:   "create --name NAME [--image IMAGE]",
		Short: "Create a VM and wait until it is ready (agent and SSH answer)",
		Long: `Create a VM from an image and boot it. The command returns once the guest
agent answers and the guest's SSH host key is pinned, so 'banger vm ssh NAME'
works right away. On a terminal it shows live progress.

Without --image the image named by default_image_name is used.`,
		Example: `  banger vm create --name dev
  banger vm create --name big --image devbox --cpus 4 --memory 4G --disk-size 20G
  banger vm create --name scratch --image pulled-box --auth-sync opencode
  banger vm create --name agent --network allow --allow registry.npmjs.org --allow '*.pypi.org'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if req.AuthSync, err = auth.request(cmd); err != nil {
				return err
			}
			if req.MemoryMiB, err = parseMiB("--memory", memory); err != nil {
				return err
			}
			if diskSize != "" {
				mib, err := parseMiB("--disk-size", diskSize)
				if err != nil {
					return err
				}
				req.DiskBytes = int64(mib) << 20
			}
			req.Network = nf.policy(cmd.Flags())
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			pv := newProgressView(a.stderr)
			vm, err := cl.CreateVM(cmd.Context(), req, pv.Event)
			pv.Close()
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, vm)
			}
			fmt.Fprintf(a.stdout, "vm %s is running (ip %s)\nconnect with: banger vm ssh %s\n", vm.Name, orDash(vm.IP), vm.Name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Name, "name", "", "VM name (a DNS label; the VM is reachable as NAME.vm)")
	f.StringVar(&req.Image, "image", "", "image or template to start from (default: default_image_name)")
	f.BoolVar(&req.Cold, "cold", false, "boot the image even when a template of it could start the VM warm")
	f.IntVar(&req.CPUs, "cpus", 0, "virtual CPUs (default 2)")
	f.StringVar(&memory, "memory", "", "memory, e.g. 1024 (MiB), 2G (default 1G)")
	f.StringVar(&diskSize, "disk-size", "", "size of the work disk mounted at /root, e.g. 8G (default 8G)")
	f.BoolVar(&req.KeepAlive, "keep-alive", false, "never stop this VM for being idle")
	auth.add(cmd)
	nf.add(f)
	f.BoolVar(&asJSON, "json", false, "print the VM as JSON")
	cmd.MarkFlagRequired("name")
	return cmd
}

func (a *app) vmListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List VMs",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			vms, err := cl.VMs(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, vms)
			}
			rows := [][]string{{"NAME", "STATE", "IP", "IMAGE", "CPUS", "MEMORY", "CREATED"}}
			for _, v := range vms {
				rows = append(rows, []string{v.Name, string(v.State), orDash(v.IP), v.Image, strconv.Itoa(v.CPUs), bytesize.Format(int64(v.MemoryMiB) << 20), ago(v.CreatedAt)})
			}
			return table(a.stdout, rows)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) vmShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a VM's state, address, resources and files",
		Args:  exactArgs(1, "a VM name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			v, err := cl.VM(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, v)
			}
			rows := [][]string{
				{"name:", v.Name + " (" + v.Name + ".vm)"},
				{"state:", string(v.State)},
				{"image:", v.Image},
				{"vmm:", v.VMM + accelNote(v.Accel)},
				{"ip:", orDash(v.IP)},
				{"mac:", orDash(v.MAC)},
				{"tap:", orDash(v.TAP)},
				{"pid:", pidStr(v.PID)},
				{"cpus:", strconv.Itoa(v.CPUs)},
				{"memory:", bytesize.Format(int64(v.MemoryMiB) << 20)},
				{"work disk:", bytesize.Format(v.DiskBytes) + " at /root"},
				{"auth sync:", authsync.Describe(v.AuthSync)},
				{"dir:", v.Dir},
				{"created:", ago(v.CreatedAt)},
			}
			if v.StateBytes > 0 {
				rows = append(rows, []string{"saved state:", bytesize.Format(v.StateBytes) + " (memory and devices; 'banger vm start " + v.Name + "' resumes it)"})
			}
			if v.LastError != "" {
				rows = append(rows, []string{"last error:", v.LastError})
			}
			rows = append(rows, networkRows(v)...)
			rows = append(rows, forwardRows(v.Forwards)...)
			rows = append(rows, usageRows(cmd.Context(), cl, v)...)
			if evs, err := cl.Events(cmd.Context(), "vm/"+v.Name, 0, 5); err == nil && len(evs) > 0 {
				label := "events:"
				for _, e := range evs {
					rows = append(rows, []string{label, e.Time.Local().Format("01-02 15:04:05") + "  " + e.Message})
					label = ""
				}
			}
			return table(a.stdout, rows)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) vmStartCmd() *cobra.Command {
	var cold bool
	cmd := &cobra.Command{
		Use:   "start NAME",
		Short: "Boot a stopped VM (its disks are kept), or resume a suspended one",
		Args:  exactArgs(1, "a VM name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			pv := newProgressView(a.stderr)
			start := cl.StartVM
			if cold {
				start = cl.StartVMCold
			}
			v, err := start(cmd.Context(), args[0], pv.Event)
			pv.Close()
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "vm %s is running (ip %s)\n", v.Name, orDash(v.IP))
			return nil
		},
	}
	cmd.Flags().BoolVar(&cold, "cold", false, "boot fresh, discarding the memory a 'vm stop --suspend' saved (its processes end)")
	return cmd
}

func (a *app) vmStopCmd() *cobra.Command {
	var suspend, asJSON bool
	cmd := &cobra.Command{
		Use:   "stop NAME",
		Short: "Shut a VM down gracefully (agent, then VMM, then kill, each with a timeout), or suspend it to disk",
		Args:  exactArgs(1, "a VM name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if suspend {
				return a.suspendVM(cmd, args[0], asJSON)
			}
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			v, err := cl.StopVM(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.printVMState(v, asJSON, "")
		},
	}
	cmd.Flags().BoolVar(&suspend, "suspend", false, "save the VM's memory to disk and end its process: 'vm start' resumes it with every process running")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the VM as JSON")
	return cmd
}

func (a *app) vmRestartCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "restart NAME",
		Short: "Stop and boot a VM",
		Args:  exactArgs(1, "a VM name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			pv := newProgressView(a.stderr)
			v, err := cl.RestartVM(cmd.Context(), args[0], pv.Event)
			pv.Close()
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "vm %s is running (ip %s)\n", v.Name, orDash(v.IP))
			return nil
		},
	}
}

func (a *app) vmDeleteCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Stop a VM and remove it with its disks, address and TAP",
		Args:    exactArgs(1, "a VM name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			if err := cl.DeleteVM(cmd.Context(), args[0], force); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "deleted vm %s\n", args[0])
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "kill the VM instead of shutting it down")
	return cmd
}

func (a *app) vmLogsCmd() *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Print a VM's serial console",
		Args:  exactArgs(1, "a VM name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			return cl.ConsoleLog(cmd.Context(), args[0], follow, a.stdout)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new output")
	return cmd
}

func (a *app) vmPortsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ports NAME",
		Short: "List the guest's listening TCP and UDP ports",
		Args:  exactArgs(1, "a VM name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			ports, err := cl.Ports(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, ports)
			}
			rows := [][]string{{"PROTO", "ADDRESS", "PORT", "PROCESS", "FORWARDED FROM"}}
			for _, p := range ports {
				proc := p.Process
				if p.PID > 0 {
					proc = fmt.Sprintf("%s (%d)", p.Process, p.PID)
				}
				rows = append(rows, []string{p.Proto, p.Addr, strconv.Itoa(p.Port), orDash(proc), forwardedFrom(p.Forwarded)})
			}
			if err := table(a.stdout, rows); err != nil {
				return err
			}
			// Forwards to ports nothing listens on (yet).
			fs, err := cl.Forwards(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			for _, f := range fs {
				if !listed(ports, f) {
					fmt.Fprintf(a.stdout, "%s is forwarded to port %d, where nothing listens\n", f.HostAddr, f.GuestPort)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// parseMiB reads "1024" (MiB), "512M", "2G" or "1T".
func parseMiB(flag, s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	mult := 1
	switch strings.ToUpper(s[len(s)-1:]) {
	case "M":
		s = s[:len(s)-1]
	case "G":
		mult, s = 1024, s[:len(s)-1]
	case "T":
		mult, s = 1024*1024, s[:len(s)-1]
	}
	n, err := strconv.Atoi(strings.TrimSuffix(strings.ToUpper(s), "I"))
	if err != nil || n <= 0 {
		return 0, errdefs.Invalid("%s %q is not a size; use MiB (1024) or a suffix: 512M, 2G", flag, s)
	}
	return n * mult, nil
}

func accelNote(accel string) string {
	switch accel {
	case "kvm":
		return " (KVM)"
	case "tcg":
		return " (software emulation)"
	}
	return ""
}

func pidStr(pid int) string {
	if pid == 0 {
		return "-"
	}
	return strconv.Itoa(pid)
}
