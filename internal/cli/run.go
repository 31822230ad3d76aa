package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"banger/api"
	"banger/api/errdefs"
	"banger/client"
	"banger/internal/image"
	"banger/internal/workspace"
)

// BootstrapSession is the session 'vm run' starts to install the
// repository's tools in the guest.
const BootstrapSession = "bootstrap"

// BootstrapLog is where the bootstrap writes in the guest, besides the
// session's own logs.
const BootstrapLog = "/root/.cache/banger/bootstrap.log"

// bootstrapScript installs the tools the repository asks for with mise
// (.mise.toml, mise.toml, .tool-versions, ...), best effort: without mise
// in the guest it says so and succeeds. Output goes to the session log
// and to BootstrapLog; the exit status is mise's.
const bootstrapScript = `log=${BANGER_BOOTSTRAP_LOG:-` + BootstrapLog + `}
mkdir -p "$(dirname "$log")"
status="$log.status"
bootstrap() {
	echo "banger bootstrap: $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(pwd)"
	PATH="$HOME/.local/bin:$HOME/.local/share/mise/shims:$PATH"
	if ! command -v mise >/dev/null 2>&1; then
		echo "banger bootstrap: mise is not installed in this guest; no tools to install"
		return 0
	fi
	found=
	for f in .mise.toml mise.toml .mise/config.toml mise/config.toml .config/mise.toml .config/mise/config.toml .tool-versions; do
		if [ -e "$f" ]; then found="$found $f"; fi
	done
	if [ -z "$found" ]; then
		echo "banger bootstrap: no mise configuration or .tool-versions in $(pwd); nothing to install"
		return 0
	fi
	echo "banger bootstrap: installing tools from$found"
	MISE_YES=1 mise trust --all && MISE_YES=1 mise install
}
( bootstrap; echo $? > "$status" ) 2>&1 | tee "$log"
exit "$(cat "$status" 2>/dev/null || echo 1)"
`

func (a *app) vmRunCmd() *cobra.Command {
	var wf workspaceFlags
	var nf networkFlags
	var name, image string
	var cold bool
	var asJSON bool
	var auth authSyncFlags
	cmd := &cobra.Command{
		Use:   "run [PATH]",
		Short: "Create a VM holding the git checkout enclosing PATH (default .), ready for a coding agent",
		Long: `Resolve the git repository enclosing PATH, create a VM, copy the checkout
into /root/repo (the HEAD commit plus the work tree as it is, like
'vm workspace prepare'), start a best-effort tooling bootstrap in the guest
(mise, from the repository's .mise.toml or .tool-versions) in the
background as the session "bootstrap", print the commands to continue
with, and exit. Nothing is attached.

The VM name defaults to the repository directory's name plus a short
random suffix. If the copy fails, the new VM is deleted.`,
		Example: `  banger vm run
  banger vm run ../some-repo --branch feature/alpine --from HEAD
  banger vm run --name api --image devbox`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := wf.check(); err != nil {
				return err
			}
			authSync, err := auth.request(cmd)
			if err != nil {
				return err
			}
			path := "."
			if len(args) == 1 {
				path = args[0]
			}
			repo, err := checkRunRepo(ctx, path, wf.mode)
			if err != nil {
				return err
			}
			if name == "" {
				name = vmNameFor(repo.Root)
			}
			cl, err := a.client(ctx)
			if err != nil {
				return err
			}
			res, err := a.run(ctx, cl, runPlan{name: name, image: image, cold: cold, repo: repo, wf: wf, authSync: authSync, network: nf.policy(cmd.Flags())})
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, res)
			}
			printNextSteps(a.stdout, res)
			return nil
		},
	}
	wf.add(cmd)
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "VM name (default: the repository's directory name and a short suffix)")
	f.StringVar(&image, "image", "", "image or template to start from (default: default_image_name)")
	f.BoolVar(&cold, "cold", false, "boot the image even when a template of it could start the VM warm")
	auth.add(cmd)
	nf.add(f)
	f.BoolVar(&asJSON, "json", false, "print the VM, workspace and bootstrap session as JSON")
	return cmd
}

// checkRunRepo finds the repository and refuses early what the copy would
// refuse after the VM was made.
func checkRunRepo(ctx context.Context, path, mode string) (workspace.Repo, error) {
	repo, err := workspace.Open(ctx, path)
	if err != nil {
		return repo, err
	}
	if mode != api.WorkspaceFullCopy {
		subs, err := repo.HasSubmodules(ctx)
		if err != nil {
			return repo, err
		}
		if subs {
			return repo, errdefs.Invalid("%s uses git submodules, which %s mode cannot carry; use --mode full_copy", repo.Root, mode)
		}
	}
	return repo, nil
}

type runPlan struct {
	name, image string
	cold        bool
	repo        workspace.Repo
	wf          workspaceFlags
	authSync    *[]string // nil: the default
	network     *api.NetworkPolicy
}

// runResult is what 'vm run --json' prints.
type runResult struct {
	VM        api.VM        `json:"vm"`
	Workspace api.Workspace `json:"workspace"`
	// ImageTools are the devbox tools the VM's image holds (api.Image.Tools;
	// null: unknown).
	ImageTools []string     `json:"image_tools"`
	Bootstrap  *api.Session `json:"bootstrap,omitempty"`
	// BootstrapError says why the bootstrap did not start (best effort).
	BootstrapError string `json:"bootstrap_error,omitempty"`
	// NameResolves says NAME.vm resolves on this host; when it does not,
	// OpencodePort is the free host port the next steps forward to the
	// guest's opencode service.
	NameResolves bool `json:"name_resolves"`
	OpencodePort int  `json:"opencode_port,omitempty"`
	// OpencodeListening says the guest's opencode service listened on
	// 4096 when vm run ended (it may still be starting when not).
	OpencodeListening bool `json:"opencode_listening"`
}

func (a *app) run(ctx context.Context, cl *client.Client, p runPlan) (runResult, error) {
	pv := newProgressView(a.stderr)
	defer pv.Close()
	vm, err := cl.CreateVM(ctx, api.CreateVMRequest{Name: p.name, Image: p.image, AuthSync: p.authSync, Cold: p.cold, Network: p.network}, pv.Event)
	if err != nil {
		return runResult{}, err
	}
	ws, err := cl.PrepareWorkspace(ctx, vm.Name, api.WorkspacePrepareRequest{
		Path: p.repo.Root, Mode: p.wf.mode, Branch: p.wf.branch, From: p.wf.from,
	}, pv.Event)
	if err != nil {
		derr := cl.DeleteVM(context.WithoutCancel(ctx), vm.Name, true)
		if derr != nil {
			return runResult{}, fmt.Errorf("copying %s into vm %s: %w (deleting the vm failed too: %v)", p.repo.Root, vm.Name, err, derr)
		}
		return runResult{}, fmt.Errorf("copying %s into vm %s: %w (the vm was deleted)", p.repo.Root, vm.Name, err)
	}
	res := runResult{VM: vm, Workspace: ws}
	res.NameResolves, res.OpencodePort = opencodeRoute(ctx, vm.Name)
	if im, err := cl.Image(ctx, vm.Image); err == nil {
		res.ImageTools = im.Tools
	}
	if res.ImageTools == nil || slices.Contains(res.ImageTools, "opencode") {
		res.OpencodeListening = opencodeListening(ctx, cl, vm.Name, opencodeWait)
	}
	s, err := cl.StartSession(ctx, vm.Name, api.StartSessionRequest{
		Name: BootstrapSession, Argv: []string{"sh", "-c", bootstrapScript}, Cwd: ws.GuestPath,
	})
	if err != nil {
		res.BootstrapError = err.Error()
	} else {
		res.Bootstrap = &s
	}
	return res, nil
}

func printNextSteps(w io.Writer, r runResult) {
	n := r.VM.Name
	fmt.Fprintf(w, "vm %s is running (ip %s)\n", n, orDash(r.VM.IP))
	fmt.Fprintln(w, workspaceSummary(r.Workspace))
	switch {
	case r.Bootstrap != nil && r.ImageTools != nil && !slices.Contains(r.ImageTools, "mise"):
		fmt.Fprintf(w, "bootstrap: image %s has no mise, so nothing installs the tools the repository asks for (the session %s only records that)\n",
			r.VM.Image, BootstrapSession)
	case r.Bootstrap != nil:
		fmt.Fprintf(w, "bootstrap: running in the background (mise); status: banger vm session show %s %s; output: banger vm session logs %s %s -f (also %s in the guest)\n",
			n, BootstrapSession, n, BootstrapSession, BootstrapLog)
	default:
		fmt.Fprintf(w, "bootstrap: not started: %s\n", safe(r.BootstrapError))
	}
	dir := r.Workspace.GuestPath
	has := func(tool string) bool { return r.ImageTools == nil || slices.Contains(r.ImageTools, tool) }
	fmt.Fprintf(w, "\nnext:\n  banger vm ssh %s\n", n)
	switch {
	case has("opencode") && r.NameResolves:
		fmt.Fprintf(w, "  opencode attach http://%s.vm:4096 --dir %s\n  banger vm acp %s\n", n, dir, n)
	case has("opencode"):
		// No *.vm names on this host ('banger system setup' routes them):
		// reach the service through the agent instead.
		spec := strconv.Itoa(opencodeGuestPort)
		if r.OpencodePort != opencodeGuestPort {
			spec = strconv.Itoa(r.OpencodePort) + ":" + spec
		}
		fmt.Fprintf(w, "  banger vm forward %s %s --detach\n  opencode attach http://127.0.0.1:%d --dir %s\n  banger vm acp %s\n",
			n, spec, r.OpencodePort, dir, n)
	}
	if has("opencode") && !r.OpencodeListening {
		fmt.Fprintf(w, "  (the opencode service is not listening on %d yet; 'banger vm ports %s' lists it once it is)\n", opencodeGuestPort, n)
	}
	for _, tool := range []string{"claude", "pi"} {
		if has(tool) {
			fmt.Fprintf(w, "  banger vm ssh %s -- \"cd %s && %s\"\n", n, dir, tool)
		}
	}
	fmt.Fprint(w, authNextStep(r.VM, r.ImageTools))
	switch missing := image.MissingTools(r.ImageTools); {
	case r.ImageTools == nil:
		fmt.Fprintf(w, "(image %s was recorded before banger looked for its tools: the steps above need %s in it)\n",
			r.VM.Image, strings.Join(image.KnownTools, ", "))
	case len(missing) > 0:
		fmt.Fprintf(w, "\nnot in image %[1]s: %[2]s; to add them, build a devbox image from it and run on that:\n  banger image build --name %[1]s-devbox --from-image %[1]s\n  banger vm run --image %[1]s-devbox\n",
			r.VM.Image, strings.Join(missing, ", "))
	}
}

// vmNameFor derives a VM name from a repository directory: its base name
// as a DNS label, plus a short random suffix so several VMs of one
// repository can coexist.
func vmNameFor(root string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(filepath.Base(root)) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	base := strings.Trim(b.String(), "-")
	if len(base) > 40 {
		base = strings.TrimRight(base[:40], "-")
	}
	if base == "" {
		base = "repo"
	}
	var suffix [2]byte
	rand.Read(suffix[:])
	return base + "-" + hex.EncodeToString(suffix[:])
}
