package cli

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"banger/api"
	"banger/api/errdefs"
)

func TestParsePortSpecs(t *testing.T) {
	got, err := parsePortSpecs([]string{"8080", "18080:8080", "0:3000"})
	want := []api.PortSpec{{GuestPort: 8080}, {HostPort: 18080, GuestPort: 8080}, {GuestPort: 3000}}
	if err != nil || !cmp.Equal(got, want) {
		t.Errorf("parsePortSpecs = %+v, %v; want %+v", got, err, want)
	}
	for _, bad := range []string{"", "abc", "0", "65536", "8080:", ":8080", "1:2:3", "-1:80", "70000:80"} {
		if _, err := parsePortSpecs([]string{bad}); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("parsePortSpecs(%q) = %v, want invalid", bad, err)
		}
	}
}
