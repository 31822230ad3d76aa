package guestagent

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"banger/internal/agentproto"
)

// readStats samples /proc under procDir and statfs of mounted block devices.
func readStats(procDir string) agentproto.Stats {
	s := agentproto.Stats{Time: time.Now().UTC(), Uptime: uptime()}
	if f := strings.Fields(readTrimmed(filepath.Join(procDir, "loadavg"))); len(f) >= 4 {
		for i := range 3 {
			s.Load[i], _ = strconv.ParseFloat(f[i], 64)
		}
		if _, total, ok := strings.Cut(f[3], "/"); ok {
			s.Procs, _ = strconv.Atoi(total)
		}
	}
	s.CPU = readCPU(filepath.Join(procDir, "stat"))
	s.Memory = readMem(filepath.Join(procDir, "meminfo"))
	s.Disks = readDisks(procDir)
	s.Networks = readNetDev(filepath.Join(procDir, "net", "dev"))
	s.SSHConnections = countEstablished(procDir, sshPort)
	return s
}

func readCPU(path string) agentproto.CPUStats {
	c := agentproto.CPUStats{Count: runtime.NumCPU()}
	eachField(path, func(f []string) {
		if f[0] != "cpu" || len(f) < 9 {
			return
		}
		v := parseUints(f[1:9])
		c.User, c.Nice, c.System, c.Idle, c.IOWait, c.IRQ, c.SoftIRQ, c.Steal = v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
	})
	return c
}

func readMem(path string) agentproto.MemStats {
	var m agentproto.MemStats
	fields := map[string]*uint64{
		"MemTotal:": &m.Total, "MemFree:": &m.Free, "MemAvailable:": &m.Available,
		"Buffers:": &m.Buffers, "Cached:": &m.Cached, "SwapTotal:": &m.SwapTotal, "SwapFree:": &m.SwapFree,
	}
	eachField(path, func(f []string) {
		if p, ok := fields[f[0]]; ok && len(f) >= 2 {
			*p = parseUints(f[1:2])[0] * 1024 // kB
		}
	})
	return m
}

// readDisks lists mounted /dev block devices with their space and I/O
// counters (sectors of 512 bytes in /proc/diskstats).
func readDisks(procDir string) []agentproto.Disk {
	ioc := map[string][2]uint64{}
	eachField(filepath.Join(procDir, "diskstats"), func(f []string) {
		if len(f) >= 10 {
			v := parseUints([]string{f[5], f[9]})
			ioc[f[2]] = [2]uint64{v[0] * 512, v[1] * 512}
		}
	})
	var disks []agentproto.Disk
	seen := map[string]bool{}
	eachField(filepath.Join(procDir, "self", "mounts"), func(f []string) {
		if len(f) < 3 || !strings.HasPrefix(f[0], "/dev/") || seen[f[0]] {
			return
		}
		seen[f[0]] = true
		var st unix.Statfs_t
		if unix.Statfs(f[1], &st) != nil {
			return
		}
		bs := uint64(st.Bsize)
		counters := ioc[filepath.Base(f[0])]
		disks = append(disks, agentproto.Disk{
			Device: f[0], Mount: f[1], FSType: f[2],
			Total: st.Blocks * bs, Free: st.Bfree * bs, Avail: st.Bavail * bs,
			ReadBytes: counters[0], WrittenBytes: counters[1],
		})
	})
	return disks
}

func readNetDev(path string) []agentproto.NetIf {
	var nets []agentproto.NetIf
	eachField(path, func(f []string) {
		name, ok := strings.CutSuffix(f[0], ":")
		if !ok || len(f) < 12 {
			return
		}
		v := parseUints(f[1:12])
		nets = append(nets, agentproto.NetIf{
			Name: name, RxBytes: v[0], RxPackets: v[1], RxErrors: v[2],
			TxBytes: v[8], TxPackets: v[9], TxErrors: v[10],
		})
	})
	return nets
}

// eachField calls fn with the whitespace-separated fields of each non-empty
// line of path.
func eachField(path string, fn func([]string)) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 0 {
			fn(fields)
		}
	}
}

func parseUints(ss []string) []uint64 {
	out := make([]uint64, len(ss))
	for i, s := range ss {
		out[i], _ = strconv.ParseUint(s, 10, 64)
	}
	return out
}

// sshPort is where the guest's SSH server listens (sshd or the builtin one).
const sshPort = 22

// tcpEstablished is the ESTABLISHED state in /proc/net/tcp*.
const tcpEstablished = "01"

// countEstablished counts established TCP connections whose local port is
// port, over IPv4 and IPv6.
func countEstablished(procDir string, port int) int {
	n := 0
	for _, proto := range []string{"tcp", "tcp6"} {
		entries, _ := readSockets(filepath.Join(procDir, "net", proto), tcpEstablished)
		for _, e := range entries {
			if e.port == port {
				n++
			}
		}
	}
	return n
}
