package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) webCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "web",
		Short: "Print the web UI's URL, with the token that logs a browser in",
		Long: `Print the address of bangerd's web UI with its token. Opening it sets a
cookie in that browser and drops the token from the address bar; the UI
refuses every request without it. The token is kept in the state directory
(web-token, mode 0600); delete that file and restart the daemon to log
every browser out.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			login, err := cl.WebLogin(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, login.URL)
			return nil
		},
	}
}
