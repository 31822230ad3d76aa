package guestagent

import (
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"time"

	"golang.org/x/sys/unix"

	"banger/internal/agentproto"
)

// PowerFunc is how an agent in init mode mode carries out shutdown calls,
// for Config.Power; nil (refuse) in dev mode.
func PowerFunc(mode string) func(reboot bool) error {
	switch mode {
	case agentproto.InitModePID1:
		return signalInit
	case agentproto.InitModeService:
		return systemPower
	}
	return nil
}

// signalInit asks PID 1 (RunInit, or busybox init) to stop the machine.
func signalInit(reboot bool) error {
	sig := unix.SIGUSR2
	if reboot {
		sig = unix.SIGTERM
	}
	if err := unix.Kill(1, sig); err != nil {
		return fmt.Errorf("signalling init: %w", err)
	}
	return nil
}

// systemPower asks the image's init system to stop the machine.
func systemPower(reboot bool) error {
	verb := "poweroff"
	if reboot {
		verb = "reboot"
	}
	for _, cmd := range [][]string{{"systemctl", verb}, {verb}} {
		if path, err := exec.LookPath(cmd[0]); err == nil {
			if out, err := exec.Command(path, cmd[1:]...).CombinedOutput(); err != nil {
				return fmt.Errorf("running %s: %w: %s", cmd, err, out)
			}
			return nil
		}
	}
	return signalInit(reboot)
}

// shutdownSystem is PID 1's orderly stop: every process gets SIGTERM, then
// SIGKILL, filesystems are synced and unmounted, and the kernel powers off
// or reboots. It does not return: PID 1 exiting would panic the kernel.
func shutdownSystem(reboot bool, log *slog.Logger) {
	log.Info("shutting down", "reboot", reboot)
	unix.Kill(-1, unix.SIGTERM) // from PID 1, every process but itself
	waitChildren(5 * time.Second)
	unix.Kill(-1, unix.SIGKILL)
	waitChildren(2 * time.Second)
	unix.Sync()
	unmountAll()
	unix.Sync()
	cmd := unix.LINUX_REBOOT_CMD_POWER_OFF
	if reboot {
		cmd = unix.LINUX_REBOOT_CMD_RESTART
	}
	err := unix.Reboot(cmd)
	log.Error("reboot(2) failed; halting here", "err", err)
	select {}
}

// waitChildren reaps until no children are left or d passes.
func waitChildren(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.ECHILD) {
			return
		}
		if pid <= 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
}
