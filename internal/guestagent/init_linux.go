package guestagent

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"banger/internal/agentproto"
)

// InitOptions configure RunInit.
type InitOptions struct {
	// AgentArgs start the agent proper as PID 1's child:
	// /proc/self/exe AgentArgs... (e.g. "serve", "--init-mode=pid1").
	AgentArgs []string
	// Logger writes to the console; nil writes text to stderr.
	Logger *slog.Logger
}

// RunInit is main for PID 1. It mounts the pseudo filesystems, reads the
// kernel command line and either hands over to the image's systemd (when
// the banger unit is installed there, or banger.init=system) or becomes
// init itself: modules, hostname, network, fstab, then it runs the agent as
// a child, reaps orphans, forwards signals and shuts down in order. It only
// returns if exec of the image's init fails.
func RunInit(opts InitOptions) error {
	mountErr := mountEarly() // logged below, once the console is there
	reopenConsole()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if mountErr != nil {
		log.Error("mounting the pseudo filesystems; the system may not work", "err", mountErr)
	}
	raw, _ := os.ReadFile("/proc/cmdline")
	cmd, err := ParseCmdline(string(raw))
	if err != nil {
		log.Warn("ignoring malformed kernel parameters", "err", err)
	}
	if path, ok := systemInit(cmd.Init); ok {
		log.Info("handing over to the image's init", "init", path)
		return fmt.Errorf("executing %s: %w", path, syscall.Exec(path, []string{path}, os.Environ()))
	}
	os.Setenv("PATH", defaultPath)
	setupSystem(cmd, log)
	unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF) // ctrl-alt-del becomes SIGINT to us
	supervise(opts.AgentArgs, log)
	return nil
}

// reopenConsole gives PID 1 stdio on /dev/console: the kernel opens it
// before devtmpfs is mounted, and an OCI image's empty /dev has none.
func reopenConsole() {
	fd := -1
	for i := range 3 {
		if _, err := unix.FcntlInt(uintptr(i), unix.F_GETFD, 0); err == nil {
			continue
		}
		if fd < 0 {
			var err error
			if fd, err = unix.Open("/dev/console", unix.O_RDWR|unix.O_NOCTTY, 0); err != nil {
				return
			}
		}
		unix.Dup2(fd, i)
	}
	if fd > 2 {
		unix.Close(fd)
	}
}

// systemInit decides whether the image's own init should run: always with
// banger.init=system, never with banger.init=agent, and otherwise when it
// is systemd and the banger unit is installed to start the agent.
func systemInit(mode string) (string, bool) {
	if mode == InitAgent {
		return "", false
	}
	path, err := filepath.EvalSymlinks("/sbin/init")
	if err != nil {
		return "", false
	}
	if mode == InitSystem {
		return "/sbin/init", true
	}
	if _, err := os.Stat(agentproto.GuestUnitPath); err != nil || !strings.Contains(path, "systemd") {
		return "", false
	}
	return "/sbin/init", true
}

// setupSystem does what an init system would before services start.
func setupSystem(cmd Cmdline, log *slog.Logger) {
	var uts unix.Utsname
	unix.Uname(&uts)
	if err := mountModules(cmd.Modules, "/lib/modules"); err != nil {
		log.Warn("mounting the kernel modules disk", "err", err)
	}
	if err := loadModules("/", unix.ByteSliceToString(uts.Release[:])); err != nil {
		log.Warn("loading modules", "err", err)
	}
	if err := configureHost(cmd, "/"); err != nil {
		log.Warn("configuring the network", "err", err)
	}
	if err := mountWork(cmd.Work, "/root"); err != nil {
		log.Warn("mounting the work disk", "err", err)
	}
	if err := mountFstab("/etc/fstab"); err != nil {
		log.Warn("mounting /etc/fstab", "err", err)
	}
}

// configureHost applies the hostname, network and resolver settings of the
// kernel command line. It is also used in service mode, where it is
// harmless when the image's own network setup did the same.
func configureHost(cmd Cmdline, root string) error {
	var errs []error
	if cmd.Hostname != "" {
		errs = append(errs, unix.Sethostname([]byte(cmd.Hostname)), writeHostname(root, cmd.Hostname))
	}
	errs = append(errs, configureNetwork(guestNIC, cmd.Addr, cmd.Gateway))
	errs = append(errs, writeResolvConf(root, cmd.DNS))
	if cmd.Hostname != "" || cmd.Addr.IsValid() {
		errs = append(errs, writeHosts(root, cmd.Hostname, cmd.Addr.Addr()))
	}
	return errors.Join(errs...)
}

// Signals PID 1 acts on. The agent child asks for a shutdown with SIGUSR2
// (power off) or SIGTERM (reboot), busybox's convention; ctrl-alt-del,
// which is how Firecracker asks for a clean stop, arrives as SIGINT, and
// QEMU's ACPI power button is read from the input devices
// (watchPowerButton) and handled as SIGPWR. HUP and QUIT
// go on to the agent child, which does not catch them: HUP restarts it,
// QUIT makes it dump its goroutines to the console first (Go's default).
var (
	poweroffSignals = []os.Signal{unix.SIGUSR2, unix.SIGPWR, unix.SIGINT, unix.SIGUSR1}
	rebootSignals   = []os.Signal{unix.SIGTERM}
	forwardSignals  = []os.Signal{unix.SIGHUP, unix.SIGQUIT}
)

// supervise runs the agent child, restarting it when it dies, and reaps
// every orphan until a shutdown signal arrives.
func supervise(args []string, log *slog.Logger) {
	sigs := make(chan os.Signal, 32)
	watched := append([]os.Signal{unix.SIGCHLD}, poweroffSignals...)
	signal.Notify(sigs, append(append(watched, rebootSignals...), forwardSignals...)...)
	sv := &supervisor{args: args, log: log, restart: time.NewTimer(time.Hour), backoff: time.Second}
	sv.restart.Stop()
	sv.start()
	go watchPowerButton(inputDevDir, func() { sigs <- unix.SIGPWR }, 5*time.Second, log)
	for {
		select {
		case <-sv.restart.C:
			sv.start()
		case sig := <-sigs:
			sv.handle(sig)
		}
	}
}

// supervisor keeps the agent child running.
type supervisor struct {
	args    []string
	log     *slog.Logger
	child   int
	started time.Time
	restart *time.Timer
	backoff time.Duration
}

func (sv *supervisor) start() {
	sv.child, sv.started = startAgentChild(sv.args, sv.log), time.Now()
	if sv.child == 0 {
		sv.scheduleRestart()
	}
}

func (sv *supervisor) scheduleRestart() {
	if time.Since(sv.started) > 5*time.Minute {
		sv.backoff = time.Second
	}
	sv.log.Error("agent is not running; restarting it", "in", sv.backoff)
	sv.restart.Reset(sv.backoff)
	sv.backoff = min(sv.backoff*2, 30*time.Second)
}

func (sv *supervisor) handle(sig os.Signal) {
	switch {
	case sig == unix.SIGCHLD:
		if ws, died := reapAll(sv.child); died {
			sv.log.Warn("agent exited", exitAttr(ws))
			sv.child = 0
			sv.scheduleRestart()
		}
	case contains(poweroffSignals, sig), contains(rebootSignals, sig):
		shutdownSystem(contains(rebootSignals, sig), sv.log)
	case sv.child > 0:
		unix.Kill(sv.child, sig.(syscall.Signal))
	}
}

func contains(sigs []os.Signal, s os.Signal) bool {
	for _, x := range sigs {
		if x == s {
			return true
		}
	}
	return false
}

// startAgentChild starts /proc/self/exe args; 0 when that failed (SIGCHLD
// will not come, so the caller's restart timer must not wait for it).
func startAgentChild(args []string, log *slog.Logger) int {
	exe, err := os.Executable()
	if err != nil {
		exe = "/proc/self/exe"
	}
	p, err := os.StartProcess(exe, append([]string{exe}, args...), &os.ProcAttr{
		Env:   []string{"PATH=" + defaultPath, "HOME=/root", "TERM=linux"},
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
	})
	if err != nil {
		log.Error("starting the agent", "err", err)
		return 0
	}
	pid := p.Pid // Release sets it to -1
	p.Release()  // reaped by reapAll, never by os.Process.Wait
	return pid
}

// reapAll collects every exited child and reports whether the agent was
// among them, and how it ended.
func reapAll(agentPID int) (agentStatus unix.WaitStatus, agentDied bool) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return agentStatus, agentDied
		}
		if pid == agentPID {
			agentStatus, agentDied = ws, true
		}
	}
}

// exitAttr is how a child ended, for the log: signal=HUP or code=2.
func exitAttr(ws unix.WaitStatus) slog.Attr {
	if ws.Signaled() {
		return slog.String("signal", signalName(ws.Signal()))
	}
	return slog.Int("code", ws.ExitStatus())
}
