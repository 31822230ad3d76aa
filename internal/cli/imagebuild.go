package cli

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"banger/api"
	"banger/internal/bytesize"
)

func (a *app) imageBuildCmd() *cobra.Command {
	var req api.BuildImageRequest
	var size string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "build --name NAME --from-image BASE [--docker] [--script FILE]... [--file FILE]...",
		Short: "Build a provisioned image from a registered one in builder VMs",
		Long: `Build a managed image from a registered image: banger boots a builder VM from
BASE, runs the provisioning steps in it as root through the guest agent,
shuts it down cleanly, and stores the result (rootfs and work-seed, the
seed of each VM's /root) as image NAME. BASE is never modified.

The steps are the devbox set (base packages and sshd for banger; mise,
opencode, claude and pi, or opencode only on Alpine; the opencode service on
0.0.0.0:4096; Docker with --docker), then each --script in order. Scripts run
with /bin/sh -e in /var/tmp/banger-build, where the --file files are copied;
that directory is removed afterwards. The devbox tools are downloaded, so the
builder VM needs network access; --no-devbox runs only your scripts.

Each step runs in its own builder VM and its result is cached by content
(the base, and every step up to it), so a rebuild after changing one script
starts from the step before it. A failed build leaves no image and no VM.`,
		Example: `  banger image build --name devbox --from-image base --docker
  banger image build --name tools --from-image devbox --no-devbox --script ./install.sh --file ./tool.deb`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if size != "" {
				n, err := parseSize(size)
				if err != nil {
					return err
				}
				req.Size = n
			}
			for _, list := range [][]string{req.Scripts, req.Files} {
				for i, p := range list {
					abs, err := filepath.Abs(p)
					if err != nil {
						return err
					}
					list[i] = abs
				}
			}
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			pv := newProgressView(a.stderr)
			out, err := cl.BuildImage(cmd.Context(), req, pv.Event)
			pv.Close()
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, out)
			}
			cached := 0
			for _, s := range out.Steps {
				if s.Cached {
					cached++
				}
			}
			fmt.Fprintf(a.stdout, "built image %s from %s in %s (%d steps, %d from the cache; rootfs %s)\n",
				out.Image.Name, out.From, out.Duration.Round(time.Second), len(out.Steps), cached, bytesize.Format(out.Image.Size))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Name, "name", "", "name of the image to build (a DNS label)")
	f.StringVar(&req.From, "from-image", "", "registered image to start from")
	f.BoolVar(&req.Docker, "docker", false, "add the Docker engine to the devbox set")
	f.BoolVar(&req.NoDevbox, "no-devbox", false, "leave out the devbox steps: run only the scripts")
	f.StringArrayVar(&req.Scripts, "script", nil, "provisioning script to run as root, after the devbox steps (repeatable)")
	f.StringArrayVar(&req.Files, "file", nil, "host file copied next to the scripts (repeatable)")
	f.StringVar(&size, "size", "", "rootfs size of the image, e.g. 8G; default: the base's plus 2 GiB")
	f.BoolVar(&req.NoCache, "no-cache", false, "run every step, ignoring cached results")
	f.BoolVar(&asJSON, "json", false, "print the build result as JSON")
	cmd.MarkFlagRequired("name")
	cmd.MarkFlagRequired("from-image")
	return cmd
}
