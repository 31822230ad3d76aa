package guestagent

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"banger/internal/agentproto"
)

// Socket states in /proc/net/{tcp,udp}*: LISTEN for TCP, and CLOSE for an
// unconnected UDP socket, which is what a bound UDP server looks like.
const (
	tcpListen = "0A"
	udpClose  = "07"
)

// listPorts reads listening sockets from procDir/net and finds their owners
// by matching socket inodes against procDir/*/fd.
func listPorts(procDir string) ([]agentproto.Port, error) {
	var ports []agentproto.Port
	inodes := map[string][]int{} // inode -> indexes into ports
	for _, proto := range []string{"tcp", "tcp6", "udp", "udp6"} {
		want := tcpListen
		if strings.HasPrefix(proto, "udp") {
			want = udpClose
		}
		entries, err := readSockets(filepath.Join(procDir, "net", proto), want)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			inodes[e.inode] = append(inodes[e.inode], len(ports))
			ports = append(ports, agentproto.Port{Proto: proto, Addr: e.addr, Port: e.port})
		}
	}
	if len(ports) > 0 {
		fillOwners(procDir, inodes, ports)
	}
	slices.SortFunc(ports, func(a, b agentproto.Port) int {
		if a.Port != b.Port {
			return a.Port - b.Port
		}
		return strings.Compare(a.Proto, b.Proto)
	})
	return ports, nil
}

type socketEntry struct {
	addr  string
	port  int
	inode string
}

func readSockets(path, state string) ([]socketEntry, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil // no IPv6, for one
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	var out []socketEntry
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != state {
			continue
		}
		ip, port, err := parseHexAddr(fields[1])
		if err != nil {
			continue
		}
		out = append(out, socketEntry{addr: ip.String(), port: port, inode: fields[9]})
	}
	return out, sc.Err()
}

// parseHexAddr decodes "0100007F:1F90": the address is stored as native
// (little-endian) 32-bit words.
func parseHexAddr(s string) (netip.Addr, int, error) {
	hexIP, hexPort, ok := strings.Cut(s, ":")
	if !ok {
		return netip.Addr{}, 0, fmt.Errorf("malformed address %q", s)
	}
	b, err := hex.DecodeString(hexIP)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return netip.Addr{}, 0, fmt.Errorf("malformed address %q", s)
	}
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("malformed port in %q", s)
	}
	ip, _ := netip.AddrFromSlice(b)
	return ip, int(port), nil
}

// fillOwners scans every process's fds for "socket:[inode]" links.
func fillOwners(procDir string, inodes map[string][]int, ports []agentproto.Port) {
	pids, _ := os.ReadDir(procDir)
	for _, d := range pids {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		fdDir := filepath.Join(procDir, d.Name(), "fd")
		fds, _ := os.ReadDir(fdDir)
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			for _, i := range inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] {
				if ports[i].PID == 0 {
					ports[i].PID = pid
					ports[i].Process = readTrimmed(filepath.Join(procDir, d.Name(), "comm"))
				}
			}
		}
	}
}
