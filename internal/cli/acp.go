package cli

import (
	"errors"

	"github.com/spf13/cobra"

	"banger/api"
	"banger/api/errdefs"
	"banger/api/stdiomux"
)

// acpScript starts opencode's ACP server in the guest: in the directory
// given as $1, else /root/repo when it exists, else /root.
const acpScript = `if [ -n "$1" ]; then
	cd "$1" || exit 1
elif [ -d /root/repo ]; then
	cd /root/repo
else
	cd /root
fi
if ! command -v opencode >/dev/null 2>&1; then
	echo "banger: opencode is not installed in this guest (not in PATH); install it in the image" >&2
	exit 127
fi
exec opencode acp
`

func (a *app) vmACPCmd() *cobra.Command {
	var cwd string
	cmd := &cobra.Command{
		Use:   "acp VM",
		Short: "Bridge stdio to 'opencode acp' in the guest, for ACP-aware editors and tools",
		Long: `Run 'opencode acp' in the guest and connect it to this process's stdin and
stdout, byte for byte (no terminal involved), so an ACP client on the host
can drive the agent in the VM. It runs in /root/repo when that checkout
exists, else in /root; --cwd picks another guest directory. The exit
status is opencode's.`,
		Example: `  banger vm acp dev
  banger vm acp dev --cwd /root/other`,
		Args: exactArgs(1, "a VM name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			conn, err := cl.Exec(cmd.Context(), args[0], api.ExecRequest{Argv: []string{"sh", "-c", acpScript, "banger-acp", cwd}})
			if err != nil {
				return err
			}
			defer conn.Close()
			end, err := a.bridgeStdio(cmd.Context(), conn, stdioOpts{raw: true})
			if errors.Is(err, stdiomux.ErrLost) {
				return errdefs.Unavailable("lost bangerd while bridging opencode acp in vm %s", args[0])
			}
			if err != nil {
				return err
			}
			return endStatus(end)
		},
	}
	cmd.Flags().StringVar(&cwd, "cwd", "", "guest working directory (default /root/repo when it exists, else /root)")
	return cmd
}
