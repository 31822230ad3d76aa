package guestagent

import (
	"bufio"
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"banger/internal/agentproto"
	"banger/internal/version"
)

func (s *Server) info(ctx context.Context, _ none) (any, error) {
	var uts unix.Utsname
	unix.Uname(&uts)
	hostname, _ := os.Hostname()
	sshKind := "off"
	if s.cfg.SSH != nil {
		sshKind = s.cfg.SSH.Kind()
	}
	return agentproto.Info{
		Agent:    version.String(),
		Protocol: agentproto.ProtocolVersion,
		Kernel:   unix.ByteSliceToString(uts.Release[:]),
		Arch:     runtime.GOARCH,
		OS:       osPrettyName("/etc/os-release"),
		Hostname: hostname,
		BootID:   readTrimmed("/proc/sys/kernel/random/boot_id"),
		Uptime:   uptime(),
		InitMode: s.cfg.InitMode,
		SSH:      sshKind,
		PID:      os.Getpid(),
	}, nil
}

func readTrimmed(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

// uptime is seconds since boot from /proc/uptime.
func uptime() float64 {
	f := strings.Fields(readTrimmed("/proc/uptime"))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func osPrettyName(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PRETTY_NAME="); ok {
			return strings.Trim(v, `"'`)
		}
	}
	return ""
}
