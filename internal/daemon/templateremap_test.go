package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/vmm/vmmfake"
)

// unmappedTemplate saves template tpl of a VM with the mapping failing,
// as an older banger or a busy machine leaves one: its memory stays in
// the stream.
func unmappedTemplate(t *testing.T, w *world) api.Template {
	t.Helper()
	w.create("src")
	w.Driver.Fail(vmmfake.StepMap, errors.New("qemu exited while loading the stream"))
	tpl, err := w.D.SnapshotVM(context.Background(), "src", "tpl", nil)
	w.Driver.Fail(vmmfake.StepMap, nil)
	if err != nil {
		t.Fatal(err)
	}
	if templateMapped(t, tpl) {
		t.Fatal("the template's memory is mapped although its mapping failed")
	}
	return tpl
}

// templateMapped reports whether tpl's state is the mapped one.
func templateMapped(t *testing.T, tpl api.Template) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(tpl.Dir, "state", "state.json"))
	if err != nil {
		t.Fatalf("reading the template's state: %v", err)
	}
	var st struct{ Files map[string]string }
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st.Files["mapped"] != ""
}

// waitMapped waits until tpl's state is mapped.
func waitMapped(t *testing.T, tpl api.Template) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !templateMapped(t, tpl) {
		if time.Now().After(deadline) {
			t.Fatal("the template's memory is not mapped 30 s after the daemon's start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// noTemporaries fails t if the templates directory or tpl's holds a
// temporary name (a copy a mapping left).
func noTemporaries(t *testing.T, w *world, tpl api.Template) {
	t.Helper()
	for _, dir := range []string{w.Layout.TemplatesDir, tpl.Dir} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") {
				t.Errorf("%s holds %s", dir, e.Name())
			}
		}
	}
}

func imageEvents(t *testing.T, w *world, contains string) int {
	t.Helper()
	evs, err := w.D.Events(context.Background(), "image/default", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if strings.Contains(e.Message, contains) {
			n++
		}
	}
	return n
}

// holdMaps makes the fake's mappings wait until release is called (or
// their context ends); entered receives once per mapping that started.
type holdMaps struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	calls   atomic.Int32
}

func newHoldMaps(w *world) *holdMaps {
	h := &holdMaps{entered: make(chan struct{}, 10), release: make(chan struct{})}
	w.Driver.OnMap(func(ctx context.Context) {
		h.calls.Add(1)
		h.entered <- struct{}{}
		select {
		case <-h.release:
		case <-ctx.Done():
		}
	})
	return h
}

func (h *holdMaps) let() { h.once.Do(func() { close(h.release) }) }

func (h *holdMaps) waitEntered(t *testing.T) {
	t.Helper()
	select {
	case <-h.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("no mapping started within 30 s of the daemon's start")
	}
}

// A template saved while its mapping failed is mapped at the next start,
// in the background, and restores from the mapped state.
func TestOlderTemplateMappedAtStart(t *testing.T) {
	w, _, _ := warmWorld(t, false)
	ctx := context.Background()
	tpl := unmappedTemplate(t, w)
	w.restart()
	waitMapped(t, tpl)
	w.restart() // waits for the mapping's end (its clean-up)
	noTemporaries(t, w, tpl)
	if n := imageEvents(t, w, "template tpl's memory was mapped"); n != 1 {
		t.Errorf("%d events of the mapping, want 1", n)
	}
	if n := len(w.Driver.MapCalls()); n != 1 {
		t.Errorf("%d mappings after two starts, want 1", n)
	}
	if _, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "warm", Image: "tpl"}, nil); err != nil {
		t.Fatalf("a warm create from the mapped template: %v", err)
	}
}

// A warm create from a template being mapped works and waits for no
// mapping; so does a delete, whose template the mapping then leaves be.
func TestWarmCreateDuringTemplateMapping(t *testing.T) {
	w, _, _ := warmWorld(t, false)
	ctx := context.Background()
	tpl := unmappedTemplate(t, w)
	h := newHoldMaps(w)
	defer h.let()
	w.restart()
	h.waitEntered(t)
	created := make(chan error, 1)
	go func() {
		_, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "during", Image: "tpl"}, nil)
		created <- err
	}()
	select {
	case err := <-created:
		if err != nil {
			t.Fatalf("a warm create during the template's mapping: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a warm create waits for the template's mapping")
	}
	if templateMapped(t, tpl) {
		t.Fatal("the template is mapped while its mapping is held")
	}
	h.let()
	waitMapped(t, tpl)
	if _, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "after", Image: "tpl"}, nil); err != nil {
		t.Fatalf("a warm create after the mapping: %v", err)
	}
	for _, vm := range []string{"during", "after"} {
		if err := agentAnswers(ctx, w, vm); err != nil {
			t.Errorf("vm %s: %v", vm, err)
		}
	}

	// A delete during a mapping is not held up by it, and the mapping
	// leaves nothing behind it.
	w.Driver.OnMap(nil)
	w.Driver.Fail(vmmfake.StepMap, errors.New("busy"))
	if _, err := w.D.SnapshotVM(ctx, "src", "tpl2", nil); err != nil {
		t.Fatal(err)
	}
	w.Driver.Fail(vmmfake.StepMap, nil)
	h2 := newHoldMaps(w)
	defer h2.let()
	w.restart()
	h2.waitEntered(t)
	deleted := make(chan error, 1)
	go func() { deleted <- w.D.DeleteTemplate(ctx, "tpl2") }()
	select {
	case err := <-deleted:
		if err != nil {
			t.Fatalf("deleting a template during its mapping: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a template delete waits for the template's mapping")
	}
	h2.let()
	w.restart() // waits for the mapping
	if got := templateLeftovers(t, w); len(got) != 1 || got[0] != "tpl" {
		t.Errorf("templates directory holds %v after the delete and the mapping, want [tpl]", got)
	}
	if n := imageEvents(t, w, "could not be mapped"); n != 0 {
		t.Errorf("a mapping of a deleted template was recorded as failed (%d events)", n)
	}
}

// Close during a mapping waits for it; the template is left as it was
// (not recorded as failed), and the next start maps it.
func TestCloseWaitsForTemplateMapping(t *testing.T) {
	w, _, _ := warmWorld(t, false)
	tpl := unmappedTemplate(t, w)
	var ended atomic.Bool
	entered := make(chan struct{}, 10)
	w.Driver.OnMap(func(ctx context.Context) {
		entered <- struct{}{}
		<-ctx.Done()
		time.Sleep(200 * time.Millisecond) // a VMM takes a while to end
		ended.Store(true)
	})
	w.restart()
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("no mapping started within 30 s of the daemon's start")
	}
	w.D.Close()
	w.D = nil
	if !ended.Load() {
		t.Fatal("Close returned before the mapping it interrupted ended")
	}
	if templateMapped(t, tpl) {
		t.Error("an interrupted mapping left the template mapped")
	}
	if _, err := os.Stat(filepath.Join(tpl.Dir, "map-failed.json")); !os.IsNotExist(err) {
		t.Errorf("an interrupted mapping was recorded as failed: %v", err)
	}
	noTemporaries(t, w, tpl)
	w.Driver.OnMap(nil)
	w.restart()
	waitMapped(t, tpl)
}

// mapRecord is what map-failed.json holds.
type mapRecord struct {
	Banger    string    `json:"banger_version"`
	Attempts  int       `json:"attempts"`
	Transient bool      `json:"transient"`
	Error     string    `json:"error"`
	At        time.Time `json:"at"`
}

// waitMapRecord waits for a failure of tpl's mapping recorded after since.
func waitMapRecord(t *testing.T, tpl api.Template, since time.Time) mapRecord {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var f mapRecord
		b, err := os.ReadFile(filepath.Join(tpl.Dir, "map-failed.json"))
		if err == nil && json.Unmarshal(b, &f) == nil && f.At.After(since) {
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed mapping recorded 30 s after the start (%s, %v)", b, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A mapping that fails is recorded and tried again at the next starts,
// up to three failures with one banger version; then no more, until a
// start of another banger version.
func TestFailedTemplateMappingNotRetried(t *testing.T) {
	w, _, _ := warmWorld(t, false)
	ctx := context.Background()
	tpl := unmappedTemplate(t, w)
	var calls atomic.Int32
	w.Driver.OnMap(func(context.Context) { calls.Add(1) })
	w.Driver.Fail(vmmfake.StepMap, errors.New("qemu: Features 0x1 unsupported"))
	var f mapRecord
	for n := 1; n <= 3; n++ {
		since := time.Now()
		w.restart()
		f = waitMapRecord(t, tpl, since)
		if f.Attempts != n || f.Transient || f.Banger == "" || !strings.Contains(f.Error, "Features 0x1 unsupported") {
			t.Fatalf("recorded failure after start %d: %+v; want attempt %d, not transient, the banger version and the error", n, f, n)
		}
		// image show's template line says so.
		got, err := w.D.Template(ctx, "tpl")
		if err != nil {
			t.Fatal(err)
		}
		if mf := got.MapFailure; mf == nil || mf.Attempts != n || mf.Retry != (n < 3) || !strings.Contains(mf.Error, "Features 0x1") {
			t.Errorf("template's map failure after start %d = %+v; want %d attempts, retry %v", n, mf, n, n < 3)
		}
	}
	w.restart()
	w.D.Close() // waits for this start's mapping, if it tried one
	w.D = nil
	if n := calls.Load(); n != 3 {
		t.Fatalf("%d mappings over four starts with all failing, want 3", n)
	}
	noTemporaries(t, w, tpl)
	// The template restores the stream way meanwhile.
	w.Driver.Fail(vmmfake.StepMap, nil)
	w.restart()
	if _, err := w.D.CreateVM(ctx, api.CreateVMRequest{Name: "warm", Image: "tpl"}, nil); err != nil {
		t.Fatalf("a warm create from a template whose mapping failed: %v", err)
	}
	if n := imageEvents(t, w, "could not be mapped"); n != 3 {
		t.Errorf("%d events of the failed mapping, want 3", n)
	}
	if n := imageEvents(t, w, "tries again only after an upgrade"); n != 1 {
		t.Errorf("%d events say banger stopped trying, want 1 (the third failure's)", n)
	}

	// An upgrade: the failures were another version's.
	marker := filepath.Join(tpl.Dir, "map-failed.json")
	f.Banger = "0.0.1-older"
	b, _ := json.Marshal(f)
	if err := os.WriteFile(marker, b, 0o600); err != nil {
		t.Fatal(err)
	}
	w.restart()
	waitMapped(t, tpl)
	w.restart()
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Errorf("the recorded failure is left once the template is mapped: %v", err)
	}
	if got, err := w.D.Template(ctx, "tpl"); err != nil || got.MapFailure != nil {
		t.Errorf("the mapped template shows a map failure: %+v, %v", got.MapFailure, err)
	}
	if n := calls.Load(); n != 4 {
		t.Errorf("%d mappings, want 4 (three failed, one after the upgrade)", n)
	}
}

// tapNet is fakeNet with the pool out of TAPs for mappings while short.
type tapNet struct {
	*fakeNet
	short atomic.Bool
}

func (n *tapNet) AcquireTAP(ctx context.Context, vm string) (string, error) {
	if n.short.Load() && strings.HasPrefix(vm, ".map-") {
		return "", errdefs.Unavailable("no usable tap in the pool of bridge banger0 (tap3 is open in another process that banger does not know about)")
	}
	return n.fakeNet.AcquireTAP(ctx, vm)
}

// A failure that is the machine's at the time, not the template's (a full
// disk, as a system call or QEMU's message says it; no TAP to lend the
// mapping), is recorded but not counted: every start tries again, and
// the mapping succeeds once the machine recovers.
func TestTransientTemplateMappingFailuresNotCounted(t *testing.T) {
	tests := []struct {
		name  string
		cause func(w *world, n *tapNet, on bool)
	}{
		{"enospc", func(w *world, _ *tapNet, on bool) {
			w.Driver.Fail(vmmfake.StepMap, onOff(on, fmt.Errorf("writing the memory file: %w", syscall.ENOSPC)))
		}},
		{"qemu disk full", func(w *world, _ *tapNet, on bool) {
			w.Driver.Fail(vmmfake.StepMap, onOff(on, errors.New("migration failed: qemu-system-x86_64: failed to save the memory: No space left on device")))
		}},
		{"no tap", func(_ *world, n *tapNet, on bool) { n.short.Store(on) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, nw, _ := warmWorld(t, false)
			n := &tapNet{fakeNet: nw}
			w.Opts.Network = n
			w.restart()
			tpl := unmappedTemplate(t, w)
			tt.cause(w, n, true)
			for i := 1; i <= maxAttempts+1; i++ {
				since := time.Now()
				w.restart()
				f := waitMapRecord(t, tpl, since)
				if !f.Transient || f.Attempts != 0 {
					t.Fatalf("recorded failure after start %d: %+v; want transient, not counted", i, f)
				}
				if got, err := w.D.Template(context.Background(), "tpl"); err != nil || got.MapFailure == nil || !got.MapFailure.Transient || !got.MapFailure.Retry {
					t.Fatalf("template's map failure after start %d = %+v (%v); want transient, retried", i, got.MapFailure, err)
				}
			}
			if k := imageEvents(t, w, "tries again at the next start"); k == 0 {
				t.Error("no event says banger tries again at the next start")
			}
			tt.cause(w, n, false)
			w.restart()
			waitMapped(t, tpl)
		})
	}
}

// maxAttempts is the bound of counted failures per banger version.
const maxAttempts = 3

func onOff(on bool, err error) error {
	if on {
		return err
	}
	return nil
}
