package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"banger/api/errdefs"
	"banger/client"
	"banger/internal/config"
	"banger/internal/doctor"
)

func (a *app) doctorCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check that this host can run banger VMs, and say how to fix what is missing",
		Long: `Check this host: KVM, the VMM binary (Firecracker, or QEMU with vmm = "qemu"),
the default image's kernel, e2fsprogs, the tun device, banger's bridge, TAP
pool, NAT, forwarding, the egress helper and .vm name resolution, free disk, the SSH key and the
daemon. Every check that does not pass prints the command that
fixes it. The exit status is 1 when any check fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, cfgErr := config.Load(a.layout.ConfigFile)
			if cfgErr != nil {
				cfg = config.Default()
			}
			cl := client.New(a.layout.SocketPath)
			rs := doctor.Run(cmd.Context(), doctor.Env{
				Config: cfg, ConfigErr: cfgErr, Layout: a.layout,
				DaemonStatus: func(ctx context.Context) error { _, err := cl.Status(ctx); return err },
				DefaultImageKernel: func(ctx context.Context) (string, error) {
					im, err := cl.Image(ctx, cfg.DefaultImageName)
					if errdefs.KindOf(err) == errdefs.KindNotFound {
						return "", nil
					}
					return im.Kernel, err
				},
			})
			if asJSON {
				printJSON(a.stdout, rs)
			} else {
				for _, r := range rs {
					fmt.Fprintf(a.stdout, "%-5s %-11s %s\n", strings.ToUpper(string(r.Status)), r.Name, r.Detail)
					if r.Fix != "" {
						fmt.Fprintf(a.stdout, "      %-11s fix: %s\n", "", r.Fix)
					}
				}
			}
			if doctor.Failed(rs) {
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
