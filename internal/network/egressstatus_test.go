package network

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// The egress piece: missing before setup, ok once the helper answers,
// wrong when its unit is installed but nothing answers, ok for a root
// daemon (it needs none), off where no unit can run it; setup without systemd says how to
// run the helper.
func TestEgressHelperStatusAndSetup(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost(t)
	spec := testSpec()
	if p := h.sys.Status(ctx, spec).Piece("egress"); p.State != StateMissing || p.Fix != SetupCommand {
		t.Errorf("before setup: %+v, want missing with the setup command as fix", p)
	}
	if _, err := h.sys.Setup(ctx, spec, SetupOptions{}); err != nil {
		t.Fatal(err)
	}
	if p := h.sys.Status(ctx, spec).Piece("egress"); p.State != StateOK {
		t.Errorf("after setup: %+v, want ok", p)
	}
	h.sys.pingHelper = func(string) error { return errors.New("connection refused") }
	if p := h.sys.Status(ctx, spec).Piece("egress"); p.State != StateWrong || !strings.Contains(p.Fix, "systemctl restart "+EgressUnitName) {
		t.Errorf("helper down: %+v, want wrong with a restart as fix", p)
	}
	root := spec
	root.UID = 0
	if p := h.sys.Status(ctx, root).Piece("egress"); p.State != StateOK || !strings.Contains(p.Detail, "no helper is needed") {
		t.Errorf("root daemon: %+v, want ok: no helper needed", p)
	}

	bare := newFakeHost(t)
	bare.units.available = false
	r, err := bare.sys.Setup(ctx, spec, SetupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range r.Changes {
		if c.Piece == "egress" && (c.Action != Skipped || !strings.Contains(c.Detail, "system egress-helper --user 1000")) {
			t.Errorf("setup without systemd: %+v, want skipped naming the helper command", c)
		}
	}
	if p := bare.sys.Status(ctx, spec).Piece("egress"); p.State != StateOff || !strings.Contains(p.Fix, "system egress-helper --user 1000") {
		t.Errorf("without systemd: %+v, want off with the helper command as fix", p)
	}
}
