package claims

import (
	"errors"
	"strings"
	"testing"
	"time"

	"banger/api/errdefs"
)

func TestClaim(t *testing.T) {
	s := &Set{Prefix: "vm/"}
	release, err := s.Claim("dev", "stop")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim("dev", "start"); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "vm/dev is busy (stop in progress)") {
		t.Errorf("second claim: %v", err)
	}
	if got := s.Holder("dev"); got != "stop" {
		t.Errorf("Holder = %q", got)
	}
	other, err := s.Claim("other", "create")
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { s.Drain(); close(waited) }()
	release()
	release() // a second release does nothing
	select {
	case <-waited:
		t.Fatal("Wait returned with a claim held")
	case <-time.After(50 * time.Millisecond):
	}
	other()
	<-waited
	if s.Holder("dev") != "" {
		t.Error("a released claim is still held")
	}
	if _, err := s.Claim("dev", "start"); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("claim after Drain: %v, want unavailable", err)
	}
}

func TestReleaseThenClaimAgain(t *testing.T) {
	var s Set
	r, _ := s.Claim("k", "pull")
	r()
	if r, err := s.Claim("k", "pull"); err != nil {
		t.Errorf("claim after release: %v", err)
	} else {
		r()
	}
}
