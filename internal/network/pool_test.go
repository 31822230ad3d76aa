package network

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"banger/api/errdefs"
	"banger/internal/config"
)

func poolHost(t *testing.T, taps int) (*fakeLinks, config.Config) {
	t.Helper()
	cfg := config.Default()
	cfg.TapPoolSize = taps
	h := newFakeHost(t)
	if _, err := h.sys.Setup(context.Background(), SpecFromConfig(cfg, 1000, 1000), SetupOptions{}); err != nil {
		t.Fatal(err)
	}
	return h.links, cfg
}

func TestPoolAcquireRelease(t *testing.T) {
	ctx := context.Background()
	links, cfg := poolHost(t, 2)
	p := NewPool(PoolOptions{Config: cfg, Store: newMemStore(), UID: 1000, Links: links})
	a, err := p.Acquire(ctx, "a")
	if err != nil || a != "banger0-tap0" {
		t.Fatalf("Acquire(a) = %q, %v", a, err)
	}
	if again, _ := p.Acquire(ctx, "A"); again != a {
		t.Errorf("Acquire(A) again = %q, want %q", again, a)
	}
	b, err := p.Acquire(ctx, "b")
	if err != nil || b != "banger0-tap1" {
		t.Fatalf("Acquire(b) = %q, %v", b, err)
	}
	_, err = p.Acquire(ctx, "c")
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "all 2 taps") ||
		!strings.Contains(err.Error(), "tap_pool_size") || !strings.Contains(err.Error(), "by a, b") {
		t.Errorf("Acquire on an exhausted pool: %v", err)
	}
	if err := p.Release(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if held, _ := p.Held(ctx, "a"); held != "" {
		t.Errorf("Held(a) after release = %q", held)
	}
	if c, err := p.Acquire(ctx, "c"); err != nil || c != "banger0-tap0" {
		t.Errorf("Acquire(c) after release = %q, %v", c, err)
	}
}

func TestPoolSkipsUnusableTaps(t *testing.T) {
	ctx := context.Background()
	links, cfg := poolHost(t, 3)
	links.Delete("banger0-tap0")
	links.change("banger0-tap1", func(l *LinkInfo) error { l.Carrier = true; return nil }) // opened by a stranger
	p := NewPool(PoolOptions{Config: cfg, Store: newMemStore(), UID: 1000, Links: links})
	if tap, err := p.Acquire(ctx, "a"); err != nil || tap != "banger0-tap2" {
		t.Fatalf("Acquire = %q, %v; want banger0-tap2", tap, err)
	}
	_, err := p.Acquire(ctx, "b")
	for _, want := range []string{"banger0-tap0 does not exist", "banger0-tap1 is open in another process", "system setup"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Acquire with broken taps: %v; want it to say %q", err, want)
		}
	}

	// Another user's pool is no use to us, but root may use any tap.
	other := NewPool(PoolOptions{Config: cfg, Store: newMemStore(), UID: 2000, Links: links})
	if _, err := other.Acquire(ctx, "x"); err == nil || !strings.Contains(err.Error(), "belongs to uid 1000, not to you (uid 2000)") {
		t.Errorf("Acquire as another user: %v", err)
	}
	root := NewPool(PoolOptions{Config: cfg, Store: newMemStore(), UID: 0, Links: links})
	if _, err := root.Acquire(ctx, "x"); err != nil {
		t.Errorf("Acquire as root: %v", err)
	}
}

func TestPoolConcurrentAcquire(t *testing.T) {
	ctx := context.Background()
	links, cfg := poolHost(t, 8)
	p := NewPool(PoolOptions{Config: cfg, Store: newMemStore(), UID: 1000, Links: links})
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[string]bool{}
	failures := 0
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tap, err := p.Acquire(ctx, string(rune('a'+i)))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failures++
				return
			}
			if got[tap] {
				t.Errorf("%s handed out twice", tap)
			}
			got[tap] = true
		}()
	}
	wg.Wait()
	if len(got) != 8 || failures != 4 {
		t.Errorf("%d taps handed out, %d failures; want 8 and 4", len(got), failures)
	}
}
