package cli

import (
	"fmt"

	"github.com/pelletier/go-toml/v2"
	"github.com/spf13/cobra"

	"banger/internal/config"
)

func (a *app) configCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show banger's configuration",
	}
	cmd.AddCommand(a.configShowCmd())
	cmd.AddCommand(&cobra.Command{
		Use:   "path",
		Short: "Print the path of the config file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintln(a.stdout, a.layout.ConfigFile)
			return nil
		},
	})
	return cmd
}

func (a *app) configShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Print the effective configuration (defaults plus config.toml) as TOML, or JSON",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(a.layout.ConfigFile)
			if err != nil {
				return err
			}
			for _, w := range cfg.Warnings {
				fmt.Fprintln(a.stderr, "warning:", w)
			}
			if asJSON {
				m, err := configMap(cfg)
				if err != nil {
					return err
				}
				return printJSON(a.stdout, m)
			}
			fmt.Fprintf(a.stdout, "# effective configuration; file: %s\n", a.layout.ConfigFile)
			fmt.Fprint(a.stdout, cfg.Format())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON keyed like config.toml")
	return cmd
}

// configMap is cfg keyed like config.toml. It decodes the TOML that
// Format writes, so the JSON holds every key with the very values the
// TOML shows: durations, addresses and the DNS list stay strings.
func configMap(cfg config.Config) (map[string]any, error) {
	var m map[string]any
	if err := toml.Unmarshal([]byte(cfg.Format()), &m); err != nil {
		return nil, fmt.Errorf("rendering the configuration as JSON: %w", err)
	}
	return m, nil
}
