package errdefs

import (
	"context"
	"errors"
	"io"
	"testing"
)

func TestKindsSurviveWrappingAndTheWire(t *testing.T) {
	cases := []struct {
		err  error
		kind Kind
	}{
		{NotFound("image %q not found", "x"), KindNotFound},
		{Conflict("busy"), KindConflict},
		{Invalid("bad: %w", io.EOF), KindInvalid},
		{Unsupported("no"), KindUnsupported},
		{Unavailable("down"), KindUnavailable},
		{context.Canceled, KindCanceled},
		{errors.New("boom"), KindInternal},
	}
	for _, tc := range cases {
		wrapped := errors.Join(tc.err)
		if got := KindOf(wrapped); got != tc.kind {
			t.Errorf("KindOf(%v) = %s, want %s", tc.err, got, tc.kind)
		}
		back := FromKind(tc.kind, tc.err.Error())
		if got := KindOf(back); got != tc.kind {
			t.Errorf("FromKind(%s) kind = %s", tc.kind, got)
		}
		if back.Error() != tc.err.Error() {
			t.Errorf("message changed over the wire: %q -> %q", tc.err, back)
		}
	}
}

func TestCauseIsKeptOnceInTheMessage(t *testing.T) {
	err := Invalid("reading %s: %w", "f", io.EOF)
	if got, want := err.Error(), "reading f: EOF"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, io.EOF) || !errors.Is(err, ErrInvalid) {
		t.Errorf("err should match both io.EOF and ErrInvalid")
	}
}
