package client_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// userProgram is a program of another module that uses the public
// packages: it asks the daemon at the default socket for its status.
const userProgram = `package main

import (
	"context"
	"fmt"
	"os"

	"banger/api"
	"banger/client"
)

func main() {
	sock, err := client.DefaultSocket()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	st, err := client.New(sock).Status(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(st.APIVersion == api.Version, st.APIVersion)
}
`

// TestAnotherModuleBuildsAgainstTheClient makes a module in a temporary
// directory that requires banger through a replace directive, as a user
// of the Go client would, adds the packages with go get, builds it and
// runs it against the examples' daemon. It works offline (GOPROXY=off)
// from the module cache, and skips when the cache lacks a dependency.
func TestAnotherModuleBuildsAgainstTheClient(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module with the go command")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/user\n\ngo 1.26\n\nreplace banger => "+root+"\n")
	write("main.go", userProgram)
	env := append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOTOOLCHAIN=local", "GOWORK=off")
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			if s := string(out); strings.Contains(s, "GOPROXY=off") || strings.Contains(s, "module lookup disabled") {
				t.Skipf("a dependency is not in the module cache and the network is off:\n%s", s)
			}
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run(goBin, "get", "banger/client", "banger/api")
	run(goBin, "build", "-o", "user", ".")
	if out := run(filepath.Join(dir, "user")); out != "true v1\n" {
		t.Errorf("the program printed %q, want %q", out, "true v1\n")
	}
	if mod, _ := os.ReadFile(filepath.Join(dir, "go.mod")); !strings.Contains(string(mod), "require banger v0.0.0") {
		t.Errorf("go get did not require banger:\n%s", mod)
	}
}
