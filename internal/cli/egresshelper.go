package cli

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"banger/internal/network"
)

func (a *app) systemEgressHelperCmd() *cobra.Command {
	var userFlag, dir string
	cmd := &cobra.Command{
		Use:   "egress-helper --user NAME|UID",
		Short: "Run the root helper that keeps an unprivileged daemon's egress policies in nftables",
		Long: `Run the egress helper for one user until stopped. A daemon that runs as
that user, without CAP_NET_ADMIN, asks it over a unix socket in ` + network.EgressHelperDir + `
(owned by the user, mode 0600) to write its VMs' network policies into
banger's egress tables. The helper serves only the network 'system setup'
made for that user in this network namespace and refuses anything else:
addresses outside its cidr, TAPs that are not its own, oversized lists.

'system setup' installs it as ` + network.EgressUnitName + ` where systemd runs; elsewhere
keep it running yourself, e.g.:

  sudo "$(command -v banger)" system egress-helper --user "$USER"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needRoot("egress-helper"); err != nil {
				return err
			}
			if userFlag == "" {
				return fmt.Errorf("--user is required: the user (name or uid) whose daemon the helper serves")
			}
			uid, err := strconv.Atoi(userFlag)
			if err != nil || uid < 0 {
				if uid, _, _, err = lookupUser(userFlag); err != nil {
					return err
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return network.ServeEgressHelper(ctx, network.EgressHelperOptions{
				UID: uid, Dir: dir, System: network.NewSystem(), Rules: network.HostEgress(),
				Log: slog.New(slog.NewTextHandler(a.stderr, nil)),
			})
		},
	}
	cmd.Flags().StringVar(&userFlag, "user", "", "the user (name or uid) whose daemon the helper serves")
	cmd.Flags().StringVar(&dir, "socket-dir", network.EgressHelperDir, "directory of the helpers' sockets (root's)")
	cmd.Flags().MarkHidden("socket-dir")
	return cmd
}
