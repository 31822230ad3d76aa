package bridge

import (
	"fmt"
	"slices"
	"strings"

	"banger/api/errdefs"
)

// PreflightScript runs in the guest (sh -c) before a session starts. Its
// arguments are the working directory ("" for the default) and the
// commands the session needs. It prints "nocwd" when the directory is
// missing and "missing NAME" for each command that does not resolve in
// PATH (from the directory, so relative commands count).
const PreflightScript = `cwd=$1; shift
if [ -n "$cwd" ]; then
	if [ -d "$cwd" ]; then cd "$cwd"; else echo nocwd; fi
fi
for c in "$@"; do
	command -v "$c" >/dev/null 2>&1 || printf 'missing %s\n' "$c"
done
exit 0
`

// Preflight is a check for one session start.
type Preflight struct {
	VM, Name string
	Cwd      string
	Commands []string // the command, then every required command
}

// NewPreflight lists argv[0] and the required commands, each once.
func NewPreflight(vm, name, cwd string, argv, required []string) Preflight {
	p := Preflight{VM: vm, Name: name, Cwd: cwd}
	var cmds []string
	if len(argv) > 0 {
		cmds = append(cmds, argv[0])
	}
	for _, c := range append(cmds, required...) {
		if c != "" && !slices.Contains(p.Commands, c) {
			p.Commands = append(p.Commands, c)
		}
	}
	return p
}

// Argv is the guest command line running PreflightScript.
func (p Preflight) Argv() []string {
	return append([]string{"sh", "-c", PreflightScript, "banger-preflight", p.Cwd}, p.Commands...)
}

// Check reads the script's output: nil when everything is there, else an
// error naming everything missing and what to do about it.
func (p Preflight) Check(out string) error {
	var problems []string
	var missing []string
	for _, line := range strings.Split(out, "\n") {
		switch {
		case line == "nocwd":
			problems = append(problems, fmt.Sprintf("guest directory %s does not exist (create it or pass another --cwd)", p.Cwd))
		case strings.HasPrefix(line, "missing "):
			missing = append(missing, strings.TrimPrefix(line, "missing "))
		}
	}
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("not found in the guest PATH: %s (install them in vm %s, or fix the command or --require-command)", strings.Join(missing, ", "), p.VM))
	}
	if len(problems) == 0 {
		return nil
	}
	return errdefs.NotFound("not starting session %q in vm %s: %s", p.Name, p.VM, strings.Join(problems, "; "))
}
