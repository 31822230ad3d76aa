package guestagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"

	"banger/internal/agentproto"
)

// ServiceOptions configure RunService.
type ServiceOptions struct {
	// Listen lists transports: "vsock:<port>", "serial:<port name>",
	// "unix:<path>". Empty means DefaultListen.
	Listen []string
	// SSH is "auto" (the image's sshd if it has one, else builtin),
	// "openssh", "builtin" or "off".
	SSH string
	// SSHAddr is where the builtin SSH server listens; ":22" when empty.
	SSHAddr string
	// Paths locate the agent's state and managed files.
	Paths Paths
	// InitMode is agentproto.InitModePID1 (the child of RunInit),
	// InitModeService (under systemd) or InitModeDev (by hand).
	InitMode string
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
}

// DefaultListen serves both guest transports; whichever device exists wins.
var DefaultListen = []string{
	"vsock:" + strconv.FormatUint(uint64(agentproto.DefaultVsockPort), 10),
	"serial:" + agentproto.SerialPortName,
}

// RunService is the agent proper: it prepares SSH, serves the protocol on
// every transport and tells systemd it is ready. It returns when ctx is
// done, or with an error when no transport can be served.
func RunService(ctx context.Context, o ServiceOptions) error {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(o.Listen) == 0 {
		o.Listen = DefaultListen
	}
	specs, err := parseListen(o.Listen)
	if err != nil {
		return err
	}
	switch o.InitMode {
	case agentproto.InitModePID1, agentproto.InitModeService, agentproto.InitModeDev:
	default:
		return fmt.Errorf("init mode %q: want pid1, service or dev", o.InitMode)
	}
	if o.InitMode == agentproto.InitModeService {
		configureFromCmdline(log)
	}
	if err := syncInjectedKeys(o.Paths); err != nil {
		log.Warn("authorizing the injected key", "err", err)
	}
	sshProv, runSSH, err := setupSSH(o, log)
	if err != nil {
		log.Warn("setting up ssh; continuing without it", "err", err)
	}
	srv, err := New(Config{Paths: o.Paths, InitMode: o.InitMode, SSH: sshProv, Power: PowerFunc(o.InitMode),
		Clock: ClockFunc(o.InitMode), Logger: log})
	if err != nil {
		return err
	}
	defer srv.Close()
	if runSSH != nil {
		go runSSH(ctx)
	}
	errc := make(chan error, len(specs))
	for _, sp := range specs {
		go func() { errc <- srv.serveSpec(ctx, sp) }()
	}
	if err := notifyReady(); err != nil {
		log.Warn("notifying systemd", "err", err)
	}
	return waitListeners(ctx, errc, len(specs), log)
}

func waitListeners(ctx context.Context, errc <-chan error, n int, log *slog.Logger) error {
	var errs []error
	for range n {
		err := <-errc
		if ctx.Err() != nil {
			return nil
		}
		log.Error("transport stopped", "err", err)
		errs = append(errs, err)
	}
	return fmt.Errorf("every transport failed: %w", errors.Join(errs...))
}

type listenSpec struct{ kind, arg string }

func parseListen(list []string) ([]listenSpec, error) {
	var specs []listenSpec
	for _, l := range list {
		kind, arg, ok := strings.Cut(l, ":")
		valid := ok && arg != ""
		if kind == "vsock" {
			_, err := strconv.ParseUint(arg, 10, 32)
			valid = valid && err == nil
		}
		if !valid || (kind != "vsock" && kind != "serial" && kind != "unix") {
			return nil, fmt.Errorf("listen address %q: want vsock:<port>, serial:<name> or unix:<path>", l)
		}
		specs = append(specs, listenSpec{kind, arg})
	}
	return specs, nil
}

func (s *Server) serveSpec(ctx context.Context, sp listenSpec) error {
	switch sp.kind {
	case "vsock":
		port, _ := strconv.ParseUint(sp.arg, 10, 32)
		return s.serveVsock(ctx, uint32(port))
	case "serial":
		return s.serveSerial(ctx, sp.arg)
	}
	os.Remove(sp.arg) // a stale socket from an earlier run
	ln, err := net.Listen("unix", sp.arg)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", sp.arg, err)
	}
	os.Chmod(sp.arg, 0o600)
	s.log.Info("serving unix socket", "path", sp.arg)
	return s.Serve(ctx, ln)
}

// setupSSH picks and prepares the SSH server; the returned function (nil
// when there is nothing to run) serves it.
func setupSSH(o ServiceOptions, log *slog.Logger) (SSHProvider, func(context.Context), error) {
	mode := o.SSH
	if mode == "auto" || mode == "" {
		mode = "builtin"
		if FindSSHD() != "" {
			mode = "openssh"
		}
	}
	switch mode {
	case "off":
		return nil, nil, nil
	case "openssh":
		bin := FindSSHD()
		if bin == "" {
			return nil, nil, errors.New("no sshd in the image")
		}
		oss, err := ConfigureOpenSSH(o.Paths, bin, log)
		if err != nil || o.InitMode != agentproto.InitModePID1 {
			return oss, nil, err // under systemd, sshd has its own unit
		}
		return oss, oss.Run, nil
	case "builtin":
		srv, err := NewSSHServer(o.Paths, log)
		if err != nil {
			return nil, nil, err
		}
		addr := o.SSHAddr
		if addr == "" {
			addr = ":22"
		}
		return srv, func(ctx context.Context) { serveSSH(ctx, srv, addr, log) }, nil
	}
	return nil, nil, fmt.Errorf("ssh mode %q: want auto, openssh, builtin or off", o.SSH)
}

func serveSSH(ctx context.Context, srv *SSHServer, addr string, log *slog.Logger) {
	var ln net.Listener
	err := retryUntil(ctx, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return
	}
	log.Info("serving ssh", "addr", addr)
	if err := srv.Serve(ctx, ln); err != nil {
		log.Error("ssh server stopped", "err", err)
	}
}

// configureFromCmdline applies banger.* network settings under systemd when
// the image did not configure eth0 itself (no IPv4 address on it).
func configureFromCmdline(log *slog.Logger) {
	raw, _ := os.ReadFile("/proc/cmdline")
	cmd, err := ParseCmdline(string(raw))
	if err != nil {
		log.Warn("ignoring malformed kernel parameters", "err", err)
	}
	// The image's root.mount needs udev for its device; without it the
	// work disk is not on /root, which would hide the VM's files and key.
	if cmd.Work != "" && !mounted("/root") {
		log.Warn("the work disk is not mounted on /root (does the image lack udev?); mounting it", "device", cmd.Work)
		if err := mountWork(cmd.Work, "/root"); err != nil {
			log.Warn("mounting the work disk", "err", err)
		}
	}
	if !cmd.Addr.IsValid() || hasIPv4(guestNIC) {
		return
	}
	if err := configureHost(cmd, "/"); err != nil {
		log.Warn("configuring the network", "err", err)
	}
}

func hasIPv4(name string) bool {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return false
	}
	addrs, _ := ifc.Addrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return true
		}
	}
	return false
}
