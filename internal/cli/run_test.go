package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"banger/api"
	"banger/api/stdiomux"
	"banger/internal/image"
)

func TestVMNameFor(t *testing.T) {
	for root, prefix := range map[string]string{
		"/home/me/src/banger":           "banger-",
		"/home/me/My_Project.git":       "my-project-git-",
		"/srv/--weird--":                "weird-",
		"/":                             "repo-",
		"/x/日本語":                        "repo-",
		"/x/" + strings.Repeat("a", 80): strings.Repeat("a", 40) + "-",
	} {
		name := vmNameFor(root)
		if !strings.HasPrefix(name, prefix) || len(name) != len(prefix)+4 {
			t.Errorf("vmNameFor(%q) = %q; want %q and 4 hex digits", root, name, prefix)
		}
		if err := image.ValidateName("vm", name); err != nil {
			t.Errorf("vmNameFor(%q) = %q: %v", root, name, err)
		}
	}
	if vmNameFor("/a/b") == vmNameFor("/a/b") {
		t.Error("two names for one repository are equal; the suffix should differ")
	}
}

// execute runs the CLI with no daemon reachable: these commands must fail
// on their arguments before they need one.
func execute(t *testing.T, args ...string) error {
	t.Helper()
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	t.Setenv("BANGER_NO_AUTOSTART", "1")
	var out bytes.Buffer
	root := NewRoot(&out, &out)
	root.SetArgs(args)
	return root.Execute()
}

func TestRunAndPrepareArguments(t *testing.T) {
	notRepo := t.TempDir()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"vm", "run", notRepo}, "not inside a git work tree"},
		{[]string{"vm", "run", "--from", "main"}, "pass --branch too"},
		{[]string{"vm", "run", "--mode", "rsync"}, "--mode"},
		{[]string{"vm", "workspace", "prepare", "dev", "--from", "HEAD"}, "pass --branch too"},
		{[]string{"vm", "session", "start", "dev", "--name", "x"}, "needs a command"},
		{[]string{"vm", "session", "start", "dev", "extra", "--name", "x", "--", "cat"}, "only the VM name goes before --"},
		{[]string{"vm", "session", "attach", "dev"}, "a VM name and a session name"},
		{[]string{"vm", "acp"}, "needs a VM name"},
	}
	for _, tc := range cases {
		err := execute(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("banger %s: %v; want an error mentioning %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

func TestRunRefusesSubmodulesBeforeCreatingAVM(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	dir := t.TempDir()
	for _, args := range [][]string{{"init", "-q"}, {"config", "user.email", "t@x"}, {"config", "user.name", "t"}} {
		exec.Command("git", append([]string{"-C", dir}, args...)...).Run()
	}
	os.WriteFile(filepath.Join(dir, ".gitmodules"), []byte("[submodule \"x\"]\n"), 0o644)
	err := execute(t, "vm", "run", dir)
	if err == nil || !strings.Contains(err.Error(), "--mode full_copy") {
		t.Errorf("vm run of a repo with submodules: %v; want the full_copy hint", err)
	}
}

func TestBootstrapWithoutMise(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "cache", "bootstrap.log")
	cmd := exec.Command("sh", "-c", bootstrapScript)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "BANGER_BOOTSTRAP_LOG=" + log}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bootstrap without mise: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "mise is not installed") {
		t.Errorf("bootstrap output = %q; want it to say mise is missing", out)
	}
	if logged, _ := os.ReadFile(log); !bytes.Equal(logged, out) {
		t.Errorf("log file = %q; want the same as the output %q", logged, out)
	}
}

func TestBootstrapPassesMiseStatusThrough(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, ".local", "bin")
	os.MkdirAll(bin, 0o755)
	// A stand-in mise that fails installing.
	os.WriteFile(filepath.Join(bin, "mise"), []byte("#!/bin/sh\necho \"mise $*\"\n[ \"$1\" = trust ] || exit 7\n"), 0o755)
	os.WriteFile(filepath.Join(dir, ".tool-versions"), []byte("node 22\n"), 0o644)
	cmd := exec.Command("sh", "-c", bootstrapScript)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "BANGER_BOOTSTRAP_LOG=" + filepath.Join(dir, "b.log")}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
		t.Errorf("bootstrap with a failing mise: %v; want exit status 7\n%s", err, out)
	}
	if !strings.Contains(string(out), "mise trust --all") || !strings.Contains(string(out), ".tool-versions") {
		t.Errorf("bootstrap output = %q", out)
	}
}

func TestEndStatus(t *testing.T) {
	code := func(err error) int {
		if err == nil {
			return 0
		}
		if ee, ok := err.(exitError); ok {
			return ee.code
		}
		return -1
	}
	for _, tc := range []struct {
		end  stdiomux.End
		want int
	}{
		{stdiomux.End{Exit: &api.ExitStatus{Code: 0}}, 0},
		{stdiomux.End{Exit: &api.ExitStatus{Code: 3}}, 3},
		{stdiomux.End{Exit: &api.ExitStatus{Code: -1, Signal: "KILL"}}, 137},
		{stdiomux.End{Exit: &api.ExitStatus{Code: -1, Signal: "TERM"}}, 143},
		{stdiomux.End{Detached: true}, 0},
		{stdiomux.End{Error: &api.Error{Kind: "internal", Message: "boom"}}, -1},
	} {
		if got := code(endStatus(tc.end)); got != tc.want {
			t.Errorf("endStatus(%+v) exit code = %d; want %d", tc.end, got, tc.want)
		}
	}
}

func TestDetachKey(t *testing.T) {
	buf := make([]byte, 64)
	n, err := detachKey{strings.NewReader("abc\x1ddef")}.Read(buf)
	if string(buf[:n]) != "abc" || err == nil {
		t.Errorf("Read = %q, %v; want abc and end of input", buf[:n], err)
	}
}

func TestRunPrintsNextSteps(t *testing.T) {
	var out bytes.Buffer
	printNextSteps(&out, runResult{
		VM:           api.VM{Name: "app-1a2b", IP: "172.16.0.2"},
		Workspace:    api.Workspace{VM: "app-1a2b", GuestPath: "/root/repo", RepoPath: "/src/app", Mode: "shallow", Head: "0123456789abcdef", Branch: "main", Files: 3},
		Bootstrap:    &api.Session{Name: "bootstrap"},
		NameResolves: true,
	})
	for _, want := range []string{
		"vm app-1a2b is running (ip 172.16.0.2)",
		"app-1a2b:/root/repo holds /src/app at 0123456789ab on main (shallow)",
		"banger vm session logs app-1a2b bootstrap -f",
		"banger vm ssh app-1a2b\n",
		"opencode attach http://app-1a2b.vm:4096 --dir /root/repo\n",
		"banger vm acp app-1a2b\n",
		`banger vm ssh app-1a2b -- "cd /root/repo && claude"`,
		`banger vm ssh app-1a2b -- "cd /root/repo && pi"`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("vm run output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestRunNextStepsFollowTheImageTools: an image without opencode gets no
// opencode or acp step and is told what is missing and how to add it;
// without mise the bootstrap line says it installs nothing.
func TestRunNextStepsFollowTheImageTools(t *testing.T) {
	var out bytes.Buffer
	printNextSteps(&out, runResult{
		VM:         api.VM{Name: "app-1a2b", IP: "172.16.0.2", Image: "slim"},
		Workspace:  api.Workspace{VM: "app-1a2b", GuestPath: "/root/repo", RepoPath: "/src/app", Mode: "shallow", Head: "0123456789abcdef", Branch: "main", Files: 3},
		ImageTools: []string{"claude"},
		Bootstrap:  &api.Session{Name: "bootstrap"},
	})
	got := out.String()
	for _, unwanted := range []string{"opencode attach", "vm acp", "&& pi", "running in the background"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("vm run output has %q though the image lacks its tool:\n%s", unwanted, got)
		}
	}
	for _, want := range []string{
		"banger vm ssh app-1a2b\n",
		`banger vm ssh app-1a2b -- "cd /root/repo && claude"`,
		"bootstrap: image slim has no mise",
		"not in image slim: mise, opencode, pi",
		"banger image build --name slim-devbox --from-image slim",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("vm run output lacks %q:\n%s", want, got)
		}
	}
}

// Without *.vm names on the host, opencode is reached through a forward.
func TestRunNextStepsForwardWhenNamesDoNotResolve(t *testing.T) {
	for _, tt := range []struct {
		port int
		want []string
	}{
		{4096, []string{"banger vm forward app-1a2b 4096 --detach\n", "opencode attach http://127.0.0.1:4096 --dir /root/repo\n"}},
		{14096, []string{"banger vm forward app-1a2b 14096:4096 --detach\n", "opencode attach http://127.0.0.1:14096 --dir /root/repo\n"}},
	} {
		var out bytes.Buffer
		printNextSteps(&out, runResult{
			VM:           api.VM{Name: "app-1a2b", IP: "172.16.0.2"},
			Workspace:    api.Workspace{VM: "app-1a2b", GuestPath: "/root/repo", RepoPath: "/src/app", Mode: "shallow", Head: "0123456789abcdef", Branch: "main", Files: 3},
			OpencodePort: tt.port,
		})
		got := out.String()
		if strings.Contains(got, ".vm:4096") {
			t.Errorf("next steps use app-1a2b.vm though it does not resolve:\n%s", got)
		}
		for _, want := range tt.want {
			if !strings.Contains(got, want) {
				t.Errorf("next steps lack %q:\n%s", want, got)
			}
		}
	}
}
