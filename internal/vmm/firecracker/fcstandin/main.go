package fcstandin

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Environment variables that configure a stand-in process (see Config).
const (
	EnvStandIn    = "FCSTANDIN"            // "1": this process is the stand-in
	EnvSpec       = "FCSTANDIN_SPEC"       // path to firecracker-api.yaml (required)
	EnvFail       = "FCSTANDIN_FAIL"       // "PUT /drives/rootfs=500,..."
	EnvCrash      = "FCSTANDIN_CRASH"      // "startup", "after-boot" or "METHOD /path"
	EnvHang       = "FCSTANDIN_HANG"       // "METHOD /path" is never answered
	EnvCtrlAltDel = "FCSTANDIN_CTRLALTDEL" // "ignore": the guest has no i8042 driver
	EnvRecord     = "FCSTANDIN_RECORD"     // file to append requests to
	EnvGuestDir   = "FCSTANDIN_GUEST_DIR"
	EnvVersion    = "FCSTANDIN_VERSION"
	EnvTamper     = "FCSTANDIN_TAMPER" // see Config.Tamper
)

// RunIfStandIn runs the stand-in (EnvStandIn=1) or the fake jailer
// (EnvJailer=1) and exits when this process was started as one;
// otherwise it returns at once. Call it first in TestMain.
func RunIfStandIn() {
	switch {
	case os.Getenv(EnvJailer) == "1":
		os.Exit(JailerMain(os.Args[1:]))
	case os.Getenv(EnvStandIn) == "1":
		os.Exit(Main(os.Args[1:]))
	}
}

// Firecracker's flags the stand-in accepts and ignores, with whether they
// take a value.
var ignoredFlags = map[string]bool{
	"--log-path": true, "--level": true, "--module": true, "--metrics-path": true,
	"--seccomp-filter": true, "--http-api-max-payload-size": true, "--mmds-size-limit": true,
	"--start-time-us": true, "--start-time-cpu-us": true, "--parent-cpu-time-us": true,
	"--show-level": false, "--show-log-origin": false, "--boot-timer": false,
	"--enable-pci": false, "--no-seccomp": false,
}

// Main is the stand-in's main with Firecracker's command line; it returns
// the exit code.
func Main(args []string) int {
	sock, id := "/run/firecracker.socket", "anonymous-instance"
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, inline := strings.Cut(a, "=")
		takesValue, ignored := ignoredFlags[name]
		switch {
		case a == "--version" || a == "-V":
			fmt.Printf("Firecracker v%s\n\n", envOr(EnvVersion, DefaultVersion))
			return 0
		case name == "--api-sock" || name == "--id" || (ignored && takesValue):
			if !inline {
				if i+1 >= len(args) {
					fmt.Fprintf(os.Stderr, "Arguments parsing error: %s needs a value\n", name)
					return 1
				}
				i++
				val = args[i]
			}
			if name == "--api-sock" {
				sock = val
			} else if name == "--id" {
				id = val
			}
		case ignored:
		default:
			fmt.Fprintf(os.Stderr, "Arguments parsing error: Found argument '%s' which wasn't expected, or isn't valid in this context.\n", a)
			return 1
		}
	}
	cfg, err := configFromEnv()
	if err != nil {
		fmt.Fprintf(os.Stderr, "fcstandin: %v\n", err)
		return 1
	}
	if cfg.Record != "" {
		appendJSON(cfg.Record, map[string]any{"event": "start", "pid": os.Getpid(), "args": args})
	}
	if root := os.Getenv(EnvJail); root != "" {
		uid, _ := strconv.Atoi(os.Getenv(EnvJailUID))
		gid, _ := strconv.Atoi(os.Getenv(EnvJailGID))
		if err := cfg.enterJail(root, uid, gid); err != nil {
			fmt.Fprintf(os.Stderr, "fcstandin: %v\n", err)
			return 1
		}
		if cfg.Root != "" {
			sock = filepath.Join(cfg.Root, sock)
		}
	}
	if cfg.Crash == "startup" {
		fmt.Fprintln(os.Stderr, "fcstandin: crashing at startup")
		return 1
	}
	// Firecracker refuses a socket path that exists.
	if _, err := os.Lstat(sock); err == nil {
		fmt.Fprintf(os.Stderr, "Error creating the API server: Failed to open the API socket at: %s. Check that it is not already used.\n", sock)
		return 1
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error creating the API server: %v\n", err)
		return 1
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	srv := NewServer(cfg, id, os.Stdout, os.Exit)
	err = srv.Serve(ln)
	fmt.Fprintf(os.Stderr, "fcstandin: serving the api: %v\n", err)
	return 1
}

func configFromEnv() (Config, error) {
	specPath := os.Getenv(EnvSpec)
	if specPath == "" {
		return Config{}, errors.New(EnvSpec + " must name firecracker-api.yaml")
	}
	spec, err := LoadSpec(specPath)
	if err != nil {
		return Config{}, err
	}
	fails, err := ParseFailures(os.Getenv(EnvFail))
	if err != nil {
		return Config{}, err
	}
	return Config{
		Spec: spec, Fail: fails, Crash: os.Getenv(EnvCrash), Hang: os.Getenv(EnvHang),
		IgnoreCtrlAltDel: os.Getenv(EnvCtrlAltDel) == "ignore",
		Record:           os.Getenv(EnvRecord), GuestDir: os.Getenv(EnvGuestDir),
		Version: envOr(EnvVersion, DefaultVersion), Tamper: os.Getenv(EnvTamper),
	}, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
