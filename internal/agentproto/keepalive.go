package agentproto

import (
	"sync"
	"time"

	"github.com/hashicorp/yamux"
)

// The host's keep-alive. yamux's own would end the connection to a guest
// that is paused on purpose: its pings go unanswered while the vCPUs are
// frozen, and after ConnectionWriteTimeout yamux closes the session, and
// with it every attached session and exec. So the host side turns yamux's
// off and pings from here, and the owner of the VM holds the pings while
// it keeps the guest paused. The guest side keeps yamux's own: a paused
// guest sends nothing, and a live host always answers.

// Keep-alive timing of the host side; tests shorten them.
var (
	keepAliveInterval = 15 * time.Second
	// keepAliveTimeout bounds a ping and every write to the guest.
	keepAliveTimeout = 30 * time.Second
)

// hostMuxConfig is MuxConfig without yamux's keep-alive.
func hostMuxConfig() *yamux.Config {
	cfg := MuxConfig()
	cfg.EnableKeepAlive = false
	cfg.ConnectionWriteTimeout = keepAliveTimeout
	return cfg
}

// keepAlive pings the guest until the session ends or stop is closed.
// A ping that fails while pings are not held ends the session: the guest
// is gone or hung, and the next call connects again.
type keepAlive struct {
	mu   sync.Mutex
	held bool
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func startKeepAlive(sess *yamux.Session) *keepAlive {
	k := &keepAlive{stop: make(chan struct{}), done: make(chan struct{})}
	go k.run(sess)
	return k
}

func (k *keepAlive) run(sess *yamux.Session) {
	defer close(k.done)
	t := time.NewTicker(keepAliveInterval)
	defer t.Stop()
	for {
		select {
		case <-k.stop:
			return
		case <-sess.CloseChan():
			return
		case <-t.C:
		}
		if k.isHeld() {
			continue
		}
		if _, err := sess.Ping(); err != nil && !k.isHeld() {
			sess.Close()
			return
		}
	}
}

func (k *keepAlive) isHeld() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.held
}

func (k *keepAlive) hold(h bool) {
	k.mu.Lock()
	k.held = h
	k.mu.Unlock()
}

// close stops the pings and waits for the pinger to return.
func (k *keepAlive) close() {
	k.once.Do(func() { close(k.stop) })
	<-k.done
}

// HoldKeepAlive stops (true) or restarts (false) the host's pings, for a
// guest its owner pauses: a paused guest cannot answer, and its
// connection, with every session attached through it, must outlive the
// pause. Calls may still be made while pings are held; they wait for the
// guest, but a write that cannot go out for keepAliveTimeout (a paused
// guest's buffers full) still fails, as yamux bounds every write.
func (c *Client) HoldKeepAlive(hold bool) { c.ka.hold(hold) }
