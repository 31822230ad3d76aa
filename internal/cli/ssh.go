package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"banger/api/errdefs"
	"banger/internal/config"
)

func (a *app) vmSSHCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "ssh NAME [-- COMMAND...]",
		Short: "Open a shell (or run a command) in a VM over SSH, with its pinned host key",
		Long: `Run the system ssh against the VM as root, with banger's key and its pinned
known_hosts (StrictHostKeyChecking=yes). Plain 'ssh NAME.vm' works too once
you add 'Include ~/.config/banger/ssh/config' to ~/.ssh/config.`,
		Example: `  banger vm ssh dev
  banger vm ssh dev -- uname -r`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			v, err := cl.VM(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if v.State != "running" || v.IP == "" {
				return errdefs.Conflict("vm %s is %s without an address; start it with 'banger vm start %s'", v.Name, v.State, v.Name)
			}
			cfg, err := config.Load(a.layout.ConfigFile)
			if err != nil {
				return err
			}
			bin, err := exec.LookPath("ssh")
			if err != nil {
				return errdefs.Unavailable("ssh not found; install openssh-client")
			}
			argv := append([]string{"ssh"}, sshArgs(cfg.SSHKey(a.layout.ConfigDir), filepath.Join(a.layout.SSHDir, "known_hosts"), v.Name, v.IP)...)
			if len(args) > 1 {
				argv = append(argv, "--")
				argv = append(argv, args[1:]...)
			}
			// Replace this process so the terminal, signals and the exit
			// status are ssh's own.
			return syscall.Exec(bin, argv, os.Environ())
		},
	}
}

// sshArgs are the options that make ssh use banger's key and pinned host
// key for the VM.
func sshArgs(key, knownHosts, name, ip string) []string {
	return []string{
		"-i", key,
		"-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + knownHosts,
		"-o", "StrictHostKeyChecking=yes",
		"-o", "HostKeyAlias=" + name + ".vm",
		"-o", "LogLevel=ERROR",
		"root@" + ip,
	}
}
