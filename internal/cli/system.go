package cli

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"banger/internal/config"
	"banger/internal/network"
)

func (a *app) systemCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "system",
		Short: "Set up, check or remove the host network VMs use (needs sudo)",
		Long: `The host network is a bridge with banger's address, a pool of TAP devices
owned by you, NAT for the guest network, IPv4 forwarding, and routing of
*.vm lookups to the daemon's DNS through systemd-resolved. Creating it needs
root once; after that the daemon runs without privilege.

banger is usually not on root's PATH, so run it as:

  sudo "$(command -v banger)" system setup`,
	}
	cmd.AddCommand(a.systemSetupCmd(), a.systemTeardownCmd(), a.systemStatusCmd(), a.systemEgressHelperCmd())
	return cmd
}

// systemFlags are what every system subcommand reads.
type systemFlags struct {
	config string
	user   string
	asJSON bool
}

func (f *systemFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.config, "config", "", "config file to read the network settings from (default: the invoking user's)")
	cmd.Flags().StringVar(&f.user, "user", "", "the user (name or uid) whose daemon uses the network (default: the one who ran sudo)")
	cmd.Flags().BoolVar(&f.asJSON, "json", false, "print JSON")
}

func (a *app) systemSetupCmd() *cobra.Command {
	var f systemFlags
	var boot, rootfs bool
	var uplink string
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Create or repair the host network for the invoking user (idempotent)",
		Long: `Create, or repair, everything VMs need on the host: bridge bridge_name with
bridge_ip on cidr, tap_pool_size TAPs owned by the user who ran sudo, an
nftables table 'ip banger' (masquerade, forwarding for the bridge, DNS on
bridge_ip:53 to the daemon), IPv4 forwarding, *.vm routing in
systemd-resolved, the boot unit banger-network.service that rebuilds all
this at boot, and banger-egress.service, the helper that writes your
daemon's egress policies into nftables (see 'system egress-helper'). Run it again after changing those settings; a second run changes
nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needRoot("setup"); err != nil {
				return err
			}
			sys := network.NewSystem()
			var spec network.Spec
			if boot {
				rec, err := sys.ReadRecord()
				if err != nil {
					return err
				}
				if rec == nil {
					return fmt.Errorf("no record of an earlier setup in %s; run '%s'", network.DefaultStateDir, network.SetupCommand)
				}
				spec = rec.Spec
			} else {
				var err error
				if spec, err = a.invokerSpec(f); err != nil {
					return err
				}
				spec.Uplink = uplink
			}
			r, err := sys.Setup(cmd.Context(), spec, network.SetupOptions{SkipUnit: boot})
			a.printReport(r, f.asJSON)
			if err != nil || !rootfs {
				return err
			}
			return a.prepareDefaultRootfs(cmd.Context(), f)
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&rootfs, "default-rootfs", false, "also build the default image's Debian root filesystem with debootstrap for your daemon (once; needs no registry, only the Debian mirror)")
	cmd.Flags().BoolVar(&boot, "boot", false, "rebuild the recorded setup without reading any config (what banger-network.service runs)")
	cmd.Flags().StringVar(&uplink, "uplink", "", "masquerade only out of this interface (default: any interface but the bridge)")
	return cmd
}

func (a *app) systemTeardownCmd() *cobra.Command {
	var f systemFlags
	var force bool
	cmd := &cobra.Command{
		Use:   "teardown",
		Short: "Remove exactly what 'system setup' created",
		Long: `Remove the boot unit and the egress helper's unit, the *.vm routing, the
nftables tables 'ip banger' and banger_egress, and the TAPs and bridge
banger created; turn IPv4 forwarding off only if banger turned it on. Interfaces banger did not create are left alone. Refuses while
VMs use their TAPs unless --force.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needRoot("teardown"); err != nil {
				return err
			}
			spec, err := a.invokerSpec(f)
			if err != nil {
				return err
			}
			r, err := network.NewSystem().Teardown(cmd.Context(), spec, network.TeardownOptions{Force: force})
			a.printReport(r, f.asJSON)
			return err
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&force, "force", false, "remove TAPs even while VMs use them")
	return cmd
}

func (a *app) systemStatusCmd() *cobra.Command {
	var f systemFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each piece of the host network and what fixes it",
		Long: `Check the bridge, the TAPs, IPv4 forwarding, NAT, *.vm routing, the boot
unit and the egress helper without changing anything. NAT can only be checked as root. The exit
status is 1 when a piece is missing or wrong.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := a.invokerSpec(f)
			if err != nil {
				return err
			}
			st := network.NewSystem().Status(cmd.Context(), spec)
			if f.asJSON {
				printJSON(a.stdout, st)
			} else {
				for _, p := range st.Pieces {
					fmt.Fprintf(a.stdout, "%-7s %-10s %s\n", strings.ToUpper(string(p.State)), p.Name, p.Detail)
					if p.Fix != "" {
						fmt.Fprintf(a.stdout, "        %-10s fix: %s\n", "", p.Fix)
					}
				}
			}
			if !st.Ready() {
				return exitError{1}
			}
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

func (a *app) printReport(r network.Report, asJSON bool) {
	if asJSON {
		printJSON(a.stdout, r)
		return
	}
	for _, c := range r.Changes {
		fmt.Fprintf(a.stdout, "%-10s %-9s %s\n", c.Piece, c.Action, c.Detail)
	}
}

func needRoot(what string) error {
	if os.Geteuid() == 0 {
		return nil
	}
	return fmt.Errorf("system %s changes the host network and needs root; run 'sudo \"$(command -v banger)\" system %s'", what, what)
}

// invokerSpec is the network the invoking user's config asks for, owned by
// them.
func (a *app) invokerSpec(f systemFlags) (network.Spec, error) {
	uid, gid, home, err := invoker(f.user)
	if err != nil {
		return network.Spec{}, err
	}
	configPath := f.config
	if configPath == "" {
		configPath = a.layout.ConfigFile
		if home != "" { // sudo resets HOME and XDG_CONFIG_HOME: read the user's own file
			configPath = filepath.Join(home, ".config", "banger", "config.toml")
		}
	}
	cfg, err := config.Load(configPath)
	if err != nil {
		return network.Spec{}, err
	}
	return network.SpecFromConfig(cfg, uid, gid), nil
}

// invoker returns the user named by --user, else the user behind sudo
// (with their home), else the caller (home "" meaning: use the usual
// layout). Root without sudo (su -, a root shell) and without --user sets
// up for root, that is for a daemon running as root; --user names anyone
// else.
func invoker(name string) (uid, gid int, home string, err error) {
	if name != "" {
		return lookupUser(name)
	}
	s := os.Getenv("SUDO_UID")
	if os.Geteuid() != 0 || s == "" {
		return os.Getuid(), os.Getgid(), "", nil
	}
	return lookupUser(s)
}

// lookupUser finds a user by name or uid: their uid, primary group and home.
func lookupUser(name string) (uid, gid int, home string, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		if _, nerr := strconv.Atoi(name); nerr != nil {
			return 0, 0, "", fmt.Errorf("--user %s: %w; give a user name or uid from /etc/passwd", name, err)
		}
		if u, err = user.LookupId(name); err != nil {
			return 0, 0, "", fmt.Errorf("--user %s: %w; give a user name or uid from /etc/passwd", name, err)
		}
	}
	if uid, err = strconv.Atoi(u.Uid); err != nil {
		return 0, 0, "", fmt.Errorf("user %s has a non-numeric uid %q", name, u.Uid)
	}
	if gid, err = strconv.Atoi(u.Gid); err != nil {
		return 0, 0, "", fmt.Errorf("user %s has a non-numeric gid %q", name, u.Gid)
	}
	return uid, gid, u.HomeDir, nil
}
