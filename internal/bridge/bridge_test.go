package bridge

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"banger/api"
	"banger/api/stdiomux"
)

// echoRemote echoes stdin to stdout and ends when stdin is closed (exit
// code = number of writes) or when detached.
type echoRemote struct {
	out io.Writer

	mu       sync.Mutex
	writes   int
	signals  []string
	detached bool
	done     chan struct{}
	once     sync.Once
}

func newEcho(out io.Writer) *echoRemote { return &echoRemote{out: out, done: make(chan struct{})} }

func (r *echoRemote) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.writes++
	r.mu.Unlock()
	return r.out.Write(p)
}

func (r *echoRemote) CloseStdin() error { r.once.Do(func() { close(r.done) }); return nil }

func (r *echoRemote) Signal(sig string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.signals = append(r.signals, sig)
	return nil
}

func (r *echoRemote) Detach() error {
	r.mu.Lock()
	r.detached = true
	r.mu.Unlock()
	r.once.Do(func() { close(r.done) })
	return nil
}

func (r *echoRemote) Wait() (*api.ExitStatus, error) {
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.detached {
		return nil, ErrDetached
	}
	return &api.ExitStatus{Code: r.writes}, nil
}

// serve starts a bridge for r and returns it with a channel closed when
// Serve returns.
func serve(t *testing.T, newRemote func(b *Bridge) Remote, wait time.Duration) (*Bridge, Remote, chan struct{}) {
	t.Helper()
	b, err := Listen(filepath.Join(t.TempDir(), "attach"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	r := newRemote(b)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.Serve(context.Background(), r, stdiomux.Control{Stdin: true}, wait)
	}()
	return b, r, done
}

func TestBridgeRelaysUntilExit(t *testing.T) {
	var rem *echoRemote
	b, _, done := serve(t, func(b *Bridge) Remote {
		rem = newEcho(b.Stdout())
		return rem
	}, time.Minute)
	fi, err := os.Stat(b.Path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("bridge socket %s: %v, mode %v; want 0600", b.Path, err, fi)
	}
	c, err := stdiomux.Dial(context.Background(), b.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if h := c.Hello(); h.Op != stdiomux.OpHello || h.Protocol != stdiomux.Protocol || !h.Stdin {
		t.Errorf("hello = %+v", h)
	}
	if _, err := os.Stat(b.Path); !os.IsNotExist(err) {
		t.Error("the socket still exists after its client connected")
	}
	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	c.Signal("INT")
	if err := c.SendStdin(bytes.NewReader(binary)); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	end, err := c.Output(&stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if end.Exit == nil || end.Exit.Code != 1 || end.Detached {
		t.Errorf("end = %+v; want exit code 1 (one write)", end)
	}
	if !bytes.Equal(stdout.Bytes(), binary) {
		t.Errorf("stdout = %q; want every byte value back", stdout.Bytes())
	}
	<-done
	if len(rem.signals) != 1 || rem.signals[0] != "INT" {
		t.Errorf("signals = %v; want [INT]", rem.signals)
	}
}

func TestBridgeDetach(t *testing.T) {
	for _, how := range []string{"control", "close"} {
		t.Run(how, func(t *testing.T) {
			var rem *echoRemote
			b, _, done := serve(t, func(b *Bridge) Remote { rem = newEcho(b.Stdout()); return rem }, time.Minute)
			c, err := stdiomux.Dial(context.Background(), b.Path)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if how == "control" {
				c.Detach()
				end, err := c.Output(io.Discard, io.Discard)
				if err != nil || !end.Detached {
					t.Errorf("end after detach = %+v, %v; want detached", end, err)
				}
			} else {
				c.Close()
			}
			<-done
			if !rem.detached {
				t.Error("the remote was not detached")
			}
		})
	}
}

func TestBridgeHoldsOutputUntilTheClientComes(t *testing.T) {
	b, _, done := serve(t, func(b *Bridge) Remote {
		r := newEcho(b.Stdout())
		go func() {
			b.Stderr().Write([]byte("early\n"))
			r.CloseStdin()
		}()
		return r
	}, time.Minute)
	c, err := stdiomux.Dial(context.Background(), b.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var stderr bytes.Buffer
	if _, err := c.Output(io.Discard, &stderr); err != nil {
		t.Fatal(err)
	}
	if stderr.String() != "early\n" {
		t.Errorf("stderr = %q; want the output written before the client connected", stderr.String())
	}
	<-done
}

func TestBridgeWithoutClientDetaches(t *testing.T) {
	var rem *echoRemote
	b, _, done := serve(t, func(b *Bridge) Remote { rem = newEcho(b.Stdout()); return rem }, 50*time.Millisecond)
	<-done
	if !rem.detached {
		t.Error("remote not detached after nobody connected")
	}
	if _, err := os.Stat(b.Path); !os.IsNotExist(err) {
		t.Error("socket left behind")
	}
	if _, err := b.Stdout().Write([]byte("x")); err == nil {
		t.Error("output to an abandoned bridge succeeded; want an error so the remote stops")
	}
}

func TestDialRejectsOtherProtocols(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "s.sock")
	l, err := net.Listen("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		stdiomux.NewWriter(c).WriteJSON(stdiomux.TypeControl, stdiomux.Control{Op: stdiomux.OpHello, Protocol: "stdio_mux_v9"})
		c.Close()
	}()
	if _, err := stdiomux.Dial(context.Background(), p); err == nil || errors.Is(err, stdiomux.ErrMalformed) {
		t.Errorf("dialing a v9 bridge: %v; want a version error", err)
	}
}
