package bridge

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"banger/api/errdefs"
)

// run runs the preflight on this host, as the guest would.
func run(t *testing.T, p Preflight) string {
	t.Helper()
	argv := p.Argv()
	out, err := exec.Command(argv[0], argv[1:]...).Output()
	if err != nil {
		t.Fatalf("preflight script: %v", err)
	}
	return string(out)
}

func TestPreflight(t *testing.T) {
	dir := t.TempDir()
	ok := NewPreflight("dev", "s", dir, []string{"sh", "-c", "true"}, []string{"cat", "sh"})
	if got := ok.Commands; strings.Join(got, ",") != "sh,cat" {
		t.Errorf("commands = %v; want sh,cat (each once)", got)
	}
	if err := ok.Check(run(t, ok)); err != nil {
		t.Errorf("preflight with everything present: %v", err)
	}
	bad := NewPreflight("dev", "s", dir+"/nope", []string{"no-such-tool-1"}, []string{"cat", "no-such-tool-2"})
	err := bad.Check(run(t, bad))
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("preflight with things missing: %v; want not found", err)
	}
	for _, want := range []string{dir + "/nope does not exist", "--cwd", "no-such-tool-1, no-such-tool-2", "--require-command"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "cat") {
		t.Errorf("error %q names cat, which exists", err)
	}
	// Relative commands resolve from the working directory.
	rel := NewPreflight("dev", "s", "/bin", []string{"./sh"}, nil)
	if err := rel.Check(run(t, rel)); err != nil {
		t.Errorf("relative command from its cwd: %v", err)
	}
}
