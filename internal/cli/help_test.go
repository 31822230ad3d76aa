package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// walk visits every command of the tree.
func walk(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, sub := range c.Commands() {
		walk(sub, fn)
	}
}

func TestEveryCommandHasAccurateHelp(t *testing.T) {
	root := NewRoot(&bytes.Buffer{}, &bytes.Buffer{})
	var paths [][]string
	walk(root, func(c *cobra.Command) {
		if c.Hidden {
			return
		}
		if c.Short == "" {
			t.Errorf("%s has no short description", c.CommandPath())
		}
		// cobra derives the command's name from Use: a Use that starts
		// with anything else would document a command that does not exist.
		if !strings.HasPrefix(c.Use, c.Name()) {
			t.Errorf("%s: Use %q does not start with its name", c.CommandPath(), c.Use)
		}
		paths = append(paths, strings.Fields(c.CommandPath())[1:])
	})
	for _, p := range paths {
		t.Run(strings.Join(p, "_"), func(t *testing.T) {
			var out bytes.Buffer
			root := NewRoot(&out, &out)
			root.SetArgs(append(p, "--help"))
			if err := root.Execute(); err != nil {
				t.Fatalf("%v --help: %v", p, err)
			}
			if !strings.Contains(out.String(), "Usage:") {
				t.Errorf("%v --help printed no usage:\n%s", p, out.String())
			}
		})
	}
}

func TestRootHelpListsCommands(t *testing.T) {
	var out bytes.Buffer
	root := NewRoot(&out, &out)
	root.SetArgs([]string{"--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"image", "kernel", "daemon", "config", "doctor", "completion"} {
		if !strings.Contains(out.String(), "\n  "+want+" ") {
			t.Errorf("root help does not list %q:\n%s", want, out.String())
		}
	}
}

func TestCompletionScriptsGenerate(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		var out bytes.Buffer
		root := NewRoot(&out, &out)
		root.SetArgs([]string{"completion", shell})
		if err := root.Execute(); err != nil {
			t.Fatalf("completion %s: %v", shell, err)
		}
		if out.Len() < 500 || !strings.Contains(out.String(), "banger") {
			t.Errorf("completion %s produced %d bytes without 'banger'", shell, out.Len())
		}
	}
}

func TestArgumentErrorsNameWhatIsMissing(t *testing.T) {
	var out bytes.Buffer
	root := NewRoot(&out, &out)
	root.SetArgs([]string{"image", "show"})
	err := root.Execute()
	if err == nil || !strings.Contains(err.Error(), "needs an image name") {
		t.Fatalf("image show without a name: err %v; want it to name the missing argument", err)
	}
}

// Commands that print state are scripted against: each can print JSON.
func TestListShowStatusCommandsHaveJSON(t *testing.T) {
	root := NewRoot(&bytes.Buffer{}, &bytes.Buffer{})
	checked := 0
	walk(root, func(c *cobra.Command) {
		switch c.Name() {
		case "list", "show", "status":
		default:
			return
		}
		checked++
		f := c.Flags().Lookup("json")
		if f == nil {
			t.Errorf("%s has no --json flag", c.CommandPath())
			return
		}
		if f.Value.Type() != "bool" {
			t.Errorf("%s --json is a %s flag, want bool", c.CommandPath(), f.Value.Type())
		}
	})
	if checked < 5 {
		t.Errorf("checked %d list/show/status commands; the walk missed the tree", checked)
	}
}
