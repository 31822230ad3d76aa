package guestagent_test

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"banger/internal/agentproto"
)

func TestPortsSeeTestListeners(t *testing.T) {
	c := newEnv(t, guestConfig()).connect()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	ports, err := c.Ports(testCtx(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	comm, _ := os.ReadFile("/proc/self/comm")
	want := []agentproto.Port{
		{Proto: "tcp", Addr: "127.0.0.1", Port: tcp.Addr().(*net.TCPAddr).Port, PID: os.Getpid(), Process: strings.TrimSpace(string(comm))},
		{Proto: "udp", Addr: "127.0.0.1", Port: udp.LocalAddr().(*net.UDPAddr).Port, PID: os.Getpid(), Process: strings.TrimSpace(string(comm))},
	}
	for _, w := range want {
		found := false
		for _, p := range ports {
			found = found || p == w
		}
		if !found {
			t.Errorf("ports lack %+v; got %+v", w, ports)
		}
	}
}

func TestStatsAndInfoAreSane(t *testing.T) {
	c := newEnv(t, guestConfig()).connect()
	ctx := testCtx(t, 10*time.Second)
	s, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.CPU.Count < 1 || s.CPU.User+s.CPU.System+s.CPU.Idle == 0 {
		t.Errorf("cpu = %+v", s.CPU)
	}
	if s.Memory.Total == 0 || s.Memory.Available > s.Memory.Total {
		t.Errorf("memory = %+v", s.Memory)
	}
	if s.Uptime <= 0 || s.Procs < 1 || s.Load[0] < 0 {
		t.Errorf("uptime %v procs %d load %v", s.Uptime, s.Procs, s.Load)
	}
	lo := false
	for _, n := range s.Networks {
		lo = lo || n.Name == "lo"
	}
	if !lo {
		t.Errorf("networks %+v lack lo", s.Networks)
	}
	for _, d := range s.Disks {
		if d.Total == 0 || d.Avail > d.Total {
			t.Errorf("disk %+v", d)
		}
	}

	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var uts unix.Utsname
	unix.Uname(&uts)
	host, _ := os.Hostname()
	bootID, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if info.Kernel != unix.ByteSliceToString(uts.Release[:]) || info.Hostname != host ||
		info.BootID != strings.TrimSpace(string(bootID)) || info.InitMode != agentproto.InitModeDev ||
		info.Protocol != agentproto.ProtocolVersion || info.Uptime <= 0 || info.SSH != "off" {
		t.Errorf("info = %+v", info)
	}
}
