package guestagent_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"banger/api/errdefs"
	"banger/internal/agentproto"
	"banger/internal/guestagent"
)

// stoppedClock is a guest clock that stood still through a suspend: it
// reads what it was set to, plus nothing. The real clock is not set in
// tests (it would be the host's); the e2e tier sets a guest's.
type stoppedClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *stoppedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stoppedClock) Set(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	return nil
}

func TestSetClockMovesTheClockAndSaysHowFar(t *testing.T) {
	saved := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := &stoppedClock{now: saved}
	c := newEnv(t, guestagent.Config{Clock: clock}).connect()
	host := saved.Add(36*time.Hour + 1500*time.Millisecond)
	res, err := c.SetClock(testCtx(t, 10*time.Second), host)
	if err != nil {
		t.Fatal(err)
	}
	if !clock.Now().Equal(host) {
		t.Errorf("guest clock = %s, want the host's %s", clock.Now(), host)
	}
	if res.Moved != 36*time.Hour+1500*time.Millisecond || !res.Before.Equal(saved) || !res.After.Equal(host) {
		t.Errorf("result = %+v, want moved 36h0m1.5s from %s", res, saved)
	}
}

func TestSetClockRefusals(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	// dev mode: no clock to set.
	if _, err := newEnv(t, guestConfig()).connect().SetClock(ctx, time.Now()); !errors.Is(err, errdefs.ErrUnsupported) {
		t.Errorf("set_clock in dev mode: %v, want unsupported", err)
	}
	clock := &stoppedClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	e := newEnv(t, guestagent.Config{Clock: clock})
	sess := e.rawSession()
	if rep, _, _ := rawCall(t, sess, headerLine(t, agentproto.CallHello, agentproto.Hello{Protocol: agentproto.ProtocolVersion})); rep.Error != nil {
		t.Fatalf("hello: %+v", rep.Error)
	}
	for name, tm := range map[string]time.Time{"zero time": {}, "year 1970": time.Unix(5, 0)} {
		rep, _, _ := rawCall(t, sess, headerLine(t, agentproto.CallSetClock, agentproto.SetClockRequest{Time: tm}))
		wantKind(t, name, rep, errdefs.KindInvalid)
	}
	if got := clock.Now(); !got.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("a refused set_clock moved the clock to %s", got)
	}
}

// TestReseedCreditsTheKernelPool writes entropy into the kernel's pool for
// real (as root: RNDADDENTROPY needs CAP_SYS_ADMIN), which is what makes
// two forks of one saved state draw different random streams: the test
// cannot clone a kernel's pool, so it checks the parts that do it, the
// credited write and the forced CRNG reseed.
func TestReseedCreditsTheKernelPool(t *testing.T) {
	if !isRoot() {
		t.Skip("needs root: RNDADDENTROPY needs CAP_SYS_ADMIN")
	}
	c := newEnv(t, guestConfig()).connect()
	ctx := testCtx(t, 10*time.Second)
	res, err := c.Reseed(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Bytes != agentproto.ReseedBytes || res.CreditedBits != agentproto.ReseedBytes*8 {
		t.Errorf("result = %+v, want %d bytes credited as %d bits", res, agentproto.ReseedBytes, agentproto.ReseedBytes*8)
	}
	if !res.Reseeded {
		t.Errorf("RNDRESEEDCRNG did not take on kernel %s (it exists since 4.17)", readFile(t, "/proc/sys/kernel/osrelease"))
	}
	if res.EntropyAvail <= 0 {
		t.Errorf("entropy_avail after reseed = %d", res.EntropyAvail)
	}
}

func TestReseedRefusals(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	notRandom := filepath.Join(t.TempDir(), "random")
	os.WriteFile(notRandom, nil, 0o600)
	e := newEnv(t, guestagent.Config{RandomDevice: notRandom})
	c := e.connect()
	if _, err := c.Reseed(ctx, make([]byte, 8)); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("reseed with 8 bytes: %v, want invalid", err)
	}
	_, err := c.Reseed(ctx, nil)
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "not the kernel's random device") {
		t.Errorf("reseed into a plain file: %v, want invalid naming the device", err)
	}
	if b, _ := os.ReadFile(notRandom); len(b) != 0 {
		t.Errorf("entropy was written into a plain file: %d bytes", len(b))
	}
	// The agent checks the size too, whatever the client does.
	sess := e.rawSession()
	rawCall(t, sess, headerLine(t, agentproto.CallHello, agentproto.Hello{Protocol: agentproto.ProtocolVersion}))
	rep, _, _ := rawCall(t, sess, headerLine(t, agentproto.CallReseed, agentproto.ReseedRequest{Entropy: make([]byte, agentproto.MaxReseedBytes+1)}))
	wantKind(t, "oversized entropy", rep, errdefs.KindInvalid)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
