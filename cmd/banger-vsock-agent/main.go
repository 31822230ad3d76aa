// Command banger-vsock-agent is the guest agent injected into every VM.
// It is static (CGO off) so it runs on any image.
//
// As PID 1 (the kernel's init=) it does the init duties and runs itself as
// "serve --init-mode=pid1" underneath, or hands over to the image's systemd
// when internal/agentproto/banger-agent.service is installed there. Under systemd the
// unit runs "serve --init-mode=service". For development it runs anywhere:
//
//	banger-vsock-agent serve --init-mode=dev --listen unix:/tmp/agent.sock --state-dir /tmp/agent
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"banger/internal/agentproto"
	"banger/internal/guestagent"
	"banger/internal/version"
)

func main() {
	if os.Getpid() == 1 {
		// The kernel passes stray command-line words as arguments; PID 1
		// takes its settings from /proc/cmdline only.
		err := guestagent.RunInit(guestagent.InitOptions{AgentArgs: pid1Args()})
		fmt.Fprintln(os.Stderr, "banger-vsock-agent:", err)
		select {} // PID 1 must not exit
	}
	args := os.Args[1:]
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		if args[0] != "serve" {
			fmt.Fprintf(os.Stderr, "banger-vsock-agent: unknown command %q (want serve)\n", args[0])
			os.Exit(2)
		}
		args = args[1:]
	}
	if err := serve(args); err != nil {
		fmt.Fprintln(os.Stderr, "banger-vsock-agent:", err)
		os.Exit(1)
	}
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	def := guestagent.DefaultPaths()
	var listen listFlag
	fs.Var(&listen, "listen", "transport to serve, repeatable: vsock:<port>, serial:<name>, unix:<path> (default vsock:1024 and serial:org.banger.agent)")
	mode := fs.String("init-mode", agentproto.InitModeService, "how the agent was started: pid1, service or dev")
	sshMode := fs.String("ssh", "", "ssh server: auto, openssh, builtin or off (default auto, off in dev mode)")
	sshAddr := fs.String("ssh-listen", ":22", "address of the builtin ssh server")
	stateDir := fs.String("state-dir", def.StateDir, "sessions and agent state")
	configDir := fs.String("config-dir", def.ConfigDir, "files injected by the host (authorized_key)")
	home := fs.String("home", def.Home, "root's home: put_files root and authorized_keys")
	sshDir := fs.String("ssh-dir", def.SSHDir, "OpenSSH configuration directory")
	debug := fs.Bool("debug", false, "log debug messages")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *showVersion {
		fmt.Println("banger-vsock-agent", version.String(), "protocol", agentproto.ProtocolVersion)
		return nil
	}
	if *sshMode == "" {
		*sshMode = "auto"
		if *mode == agentproto.InitModeDev {
			*sshMode = "off" // never touch a developer machine's sshd
		}
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGTERM, unix.SIGINT)
	defer stop()
	return guestagent.RunService(ctx, guestagent.ServiceOptions{
		Listen:   listen,
		SSH:      *sshMode,
		SSHAddr:  *sshAddr,
		Paths:    guestagent.Paths{StateDir: *stateDir, ConfigDir: *configDir, Home: *home, SSHDir: *sshDir, Root: identityRoot(*mode)},
		InitMode: *mode,
		Logger:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	})
}

// identityRoot is where reidentify rewrites the guest's /etc files: the
// root in a guest, nowhere in dev mode, which must not rename the
// developer's machine.
func identityRoot(mode string) string {
	if mode == agentproto.InitModeDev {
		return ""
	}
	return guestagent.DefaultPaths().Root
}

// pid1Args are the agent child's arguments. BANGER_AGENT_LISTEN (set on the
// kernel command line, which passes it to init's environment) adds
// comma-separated listen addresses to the defaults, e.g. a unix socket for
// debugging or for running the agent as PID 1 in a container.
func pid1Args() []string {
	args := []string{"serve", "--init-mode=" + agentproto.InitModePID1}
	if extra := os.Getenv("BANGER_AGENT_LISTEN"); extra != "" {
		for _, l := range append(slices.Clone(guestagent.DefaultListen), strings.Split(extra, ",")...) {
			args = append(args, "--listen", l)
		}
	}
	return args
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }
