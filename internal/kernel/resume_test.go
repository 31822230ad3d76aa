package kernel

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"banger/api"
	"banger/api/errdefs"
)

// lastRange returns the Range and If-Range of the last vmlinux request.
func (f *fixture) lastRange(t *testing.T) (rng, ifRange string) {
	t.Helper()
	reqs := f.srv.requestsFor("vmlinux")
	if len(reqs) == 0 {
		t.Fatal("no request for vmlinux")
	}
	last := reqs[len(reqs)-1]
	return last.Header.Get("Range"), last.Header.Get("If-Range")
}

func partialSize(t *testing.T, f *fixture) int64 {
	t.Helper()
	fi, err := os.Stat(f.partial())
	if err != nil {
		t.Fatalf("partial download not kept: %v", err)
	}
	return fi.Size()
}

func TestPullResumesTruncatedDownload(t *testing.T) {
	f := newFixture(t)
	half := len(f.kernel) / 2
	f.srv.handle("vmlinux", truncating(f.kernel))
	_, err := f.pull(t.Context(), nil)
	want := "download of vmlinux stopped at " + strconv.Itoa(half) + " of " + strconv.Itoa(len(f.kernel)) + " bytes"
	if err == nil || !strings.Contains(err.Error(), want) ||
		!strings.Contains(err.Error(), "run 'banger kernel pull test-6.1' again to resume") {
		t.Fatalf("got error %v, want one containing %q and how to resume", err, want)
	}
	if got := partialSize(t, f); got != int64(half) {
		t.Fatalf("partial has %d bytes, want %d", got, half)
	}

	f.srv.handle("vmlinux", nil)
	k, err := f.pull(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	rng, ifRange := f.lastRange(t)
	if want := "bytes=" + strconv.Itoa(half) + "-"; rng != want {
		t.Errorf("resumed request Range: got %q, want %q", rng, want)
	}
	if want := etagOf(f.kernel); ifRange != want {
		t.Errorf("resumed request If-Range: got %q, want %q", ifRange, want)
	}
	f.checkInstalled(t, k)
}

func TestPullResumesAfterCancel(t *testing.T) {
	f := newFixture(t)
	f.srv.handle("vmlinux", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(f.kernel)))
		w.Write(f.kernel[:len(f.kernel)/2])
		w.(http.Flusher).Flush()
		<-r.Context().Done() // hold the rest back until the client gives up
	})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err := f.pull(ctx, func(ev api.Event) {
		if ev.Item == "vmlinux" && ev.Current > 0 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "again to resume") {
		t.Fatalf("got %v, want a canceled error saying how to resume", err)
	}
	have := partialSize(t, f)
	if have == 0 {
		t.Fatal("nothing kept of the interrupted download")
	}

	f.srv.handle("vmlinux", nil)
	k, err := f.pull(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rng, _ := f.lastRange(t); rng != "bytes="+strconv.FormatInt(have, 10)+"-" {
		t.Errorf("resumed request Range: got %q, want bytes=%d-", rng, have)
	}
	f.checkInstalled(t, k)
}

func TestPullRestartsWhenServerIgnoresRange(t *testing.T) {
	f := newFixture(t)
	f.srv.handle("vmlinux", truncating(f.kernel))
	if _, err := f.pull(t.Context(), nil); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("truncated pull: got %v, want unavailable", err)
	}
	f.srv.handle("vmlinux", func(w http.ResponseWriter, r *http.Request) {
		w.Write(f.kernel) // 200 with the whole file, whatever Range says
	})
	k, err := f.pull(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rng, _ := f.lastRange(t); rng == "" {
		t.Error("second pull did not ask for a range")
	}
	f.checkInstalled(t, k)
}

// TestPullRestartsBadPartial covers partial files that cannot be a prefix
// of the real one: each must end in a fresh, whole download.
func TestPullRestartsBadPartial(t *testing.T) {
	tests := []struct {
		name     string
		partial  func(kernel []byte) []byte
		requests int // vmlinux requests needed
	}{
		{"longer than the file", func(k []byte) []byte { return append(k, 'x') }, 1},
		{"full length, wrong bytes", func(k []byte) []byte { return randomBytes(len(k), 9) }, 1},
		{"wrong prefix", func(k []byte) []byte { return randomBytes(len(k)/3, 9) }, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			os.MkdirAll(filepath.Dir(f.partial()), 0o755)
			if err := os.WriteFile(f.partial(), tt.partial(f.kernel), 0o644); err != nil {
				t.Fatal(err)
			}
			k, err := f.pull(t.Context(), nil)
			if err != nil {
				t.Fatal(err)
			}
			reqs := f.srv.requestsFor("vmlinux")
			if len(reqs) != tt.requests {
				t.Errorf("vmlinux requests: got %d, want %d", len(reqs), tt.requests)
			}
			if rng := reqs[len(reqs)-1].Header.Get("Range"); rng != "" {
				t.Errorf("final request Range: got %q, want none", rng)
			}
			f.checkInstalled(t, k)
		})
	}
}
