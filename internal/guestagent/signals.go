package guestagent

import (
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"banger/api/errdefs"
)

// parseSignal accepts "TERM", "SIGTERM", "term" or "15".
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, errdefs.Invalid("unknown signal %q (use a name like TERM or a number)", s)
}

// signalName is "TERM" for SIGTERM, or the number for unnamed signals.
func signalName(sig syscall.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return strings.TrimPrefix(name, "SIG")
	}
	return strconv.Itoa(int(sig))
}
