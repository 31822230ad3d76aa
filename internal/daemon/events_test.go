package daemon

import (
	"banger/internal/store"
	"context"
	"log/slog"
	"path/filepath"
	"testing"
)

// The event of an operation is recorded even when its request was
// cancelled once the operation had happened.
func TestEventOfACancelledRequestIsRecorded(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	events := &eventLog{store: st, log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	events.Event(ctx, "info", "vm/x", "done before the client went away")
	evs, err := st.Events(context.Background(), "vm/x", 0, 10)
	if err != nil || len(evs) != 1 || evs[0].Message != "done before the client went away" {
		t.Fatalf("events = %+v, %v; want the event recorded", evs, err)
	}
}
