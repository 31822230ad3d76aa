package imagebuild

import (
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

//go:embed devbox/*.sh devbox/tools.json devbox/pi/package.json devbox/pi/package-lock.json
var devboxFS embed.FS

// DevboxSteps are the steps that make a base image a banger devbox: base
// packages and sshd for banger, the coding tools (mise, opencode, claude,
// pi; opencode only on Alpine), the opencode service on 0.0.0.0:4096, and
// with docker the Docker engine. The guest agent and the network bootstrap
// need no step: banger writes the agent into every VM it creates, and the
// agent configures the network from the kernel command line.
func DevboxSteps(docker bool) []Step {
	names := []string{"10-base", "20-tools"}
	if docker {
		names = append(names, "40-docker")
	}
	steps := make([]Step, len(names))
	for i, n := range names {
		steps[i] = Step{Name: "devbox/" + strings.TrimLeft(n, "0123456789-"), Script: devboxScript(n)}
	}
	// The tools step carries its pins: changing a pin changes the step's
	// key, so a rebuild reinstalls from there. The opencode service is
	// written by the same step: a step of its own cost a builder VM's boot
	// and shutdown for one unit file.
	tools, err := toolsScript(devboxFS, DevboxPins())
	if err != nil {
		panic(err) // embedded and tested: cannot happen
	}
	steps[1].Script = append(tools, devboxScript("30-opencode-service")...)
	return steps
}

// CleanupScript runs at the end of every step, after the step's own
// script: it removes what must differ between VMs (ssh host keys,
// machine-id) and the step's directory.
func CleanupScript() []byte { return devboxScript("90-cleanup") }

func devboxScript(name string) []byte {
	b, err := devboxFS.ReadFile("devbox/" + name + ".sh")
	if err != nil {
		panic(err) // embedded: cannot happen
	}
	return b
}

// ScriptStep reads a user's provisioning script into a step. files are
// given to the step (see Step.Files).
func ScriptStep(path string, files []string) (Step, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Step{}, fmt.Errorf("reading --script: %w", err)
	}
	return Step{Name: "script/" + filepath.Base(path), Script: b, Files: files}, nil
}
