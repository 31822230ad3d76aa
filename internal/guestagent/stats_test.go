package guestagent

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCountEstablished(t *testing.T) {
	proc := t.TempDir()
	os.MkdirAll(filepath.Join(proc, "net"), 0o755)
	hdr := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	tcp := hdr +
		"   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 100 1\n" + // listening sshd
		"   1: 0200A8C0:0016 0100A8C0:D431 01 00000000:00000000 00:00000000 00000000     0        0 101 1\n" + // ssh client
		"   2: 0200A8C0:0016 0100A8C0:D432 06 00000000:00000000 00:00000000 00000000     0        0 0 1\n" + // TIME_WAIT
		"   3: 0200A8C0:D433 0100A8C0:0016 01 00000000:00000000 00:00000000 00000000     0        0 102 1\n" // outgoing ssh
	tcp6 := hdr +
		"   0: 00000000000000000000000001000000:0016 00000000000000000000000001000000:C350 01 00000000:00000000 00:00000000 00000000     0        0 103 1\n"
	os.WriteFile(filepath.Join(proc, "net", "tcp"), []byte(tcp), 0o644)
	os.WriteFile(filepath.Join(proc, "net", "tcp6"), []byte(tcp6), 0o644)
	if got := countEstablished(proc, 22); got != 2 {
		t.Errorf("countEstablished = %d, want 2 (one IPv4 and one IPv6 client)", got)
	}
	if got := countEstablished(t.TempDir(), 22); got != 0 {
		t.Errorf("countEstablished without /proc/net = %d, want 0", got)
	}
}
