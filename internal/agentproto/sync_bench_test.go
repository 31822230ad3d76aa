package agentproto_test

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"banger/internal/agentproto"
)

// restoredGuest stands for a guest agent just restored from a snapshot:
// the first SYNC reaches the yamux session of the connection that was
// live at the save, which ends on it; the sync exchange then answers the
// next ones. It returns once the host sent START.
func restoredGuest(conn net.Conn) {
	br := bufio.NewReader(conn)
	if _, err := br.ReadString('\n'); err != nil {
		return
	}
	agentproto.GuestSync(bufferedConn{br, conn})
}

// bufferedConn reads through the buffer that holds what followed the
// lost SYNC.
type bufferedConn struct {
	br *bufio.Reader
	net.Conn
}

func (c bufferedConn) Read(p []byte) (int, error) { return c.br.Read(p) }

// BenchmarkSyncAfterRestore compares the time to sync with a guest that
// lost the first SYNC, with the retransmit schedule against the former
// fixed 750 ms wait. Run: go test -run '^$' -bench SyncAfterRestore ./internal/agentproto/
func BenchmarkSyncAfterRestore(b *testing.B) {
	for _, tc := range []struct {
		name     string
		attempts []time.Duration
	}{
		{"fixed-750ms", []time.Duration{750 * time.Millisecond}},
		{"schedule", nil},
	} {
		b.Run(tc.name, func(b *testing.B) {
			if tc.attempts != nil {
				defer agentproto.SetSyncAttempts(tc.attempts)()
			}
			for b.Loop() {
				host, guest := net.Pipe()
				done := make(chan struct{})
				go func() { defer close(done); restoredGuest(guest) }()
				c, err := agentproto.HostSync(context.Background(), host)
				if err != nil {
					b.Fatal(err)
				}
				<-done
				c.Close()
				guest.Close()
			}
		})
	}
}

// The guest that lost a SYNC is still synced with.
func TestSyncAfterALostSync(t *testing.T) {
	host, guest := net.Pipe()
	defer host.Close()
	defer guest.Close()
	done := make(chan struct{})
	go func() { defer close(done); restoredGuest(guest) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := agentproto.HostSync(ctx, host); err != nil && !strings.Contains(err.Error(), "closed") {
		t.Fatal(err)
	}
	<-done
}
