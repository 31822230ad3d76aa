package cli

import (
	"strings"
	"testing"
	"time"

	"banger/api"
)

// The template line of a failed mapping says why, how often and whether
// banger tries again, with the VMM's error escaped: it may carry the
// guest console's bytes.
func TestMapFailureLine(t *testing.T) {
	tpl := api.Template{Name: "tpl", Dir: "/state/images/templates/tpl"}
	tests := []struct {
		f    api.TemplateMapFailure
		want []string
		not  []string
	}{
		{
			f:    api.TemplateMapFailure{Error: "qemu: Features 0x1 unsupported\x1b[2J", Attempts: 1, Retry: true, At: time.Now()},
			want: []string{"Features 0x1 unsupported", "1 failure", "tries again at the next start"},
			not:  []string{"\x1b"},
		},
		{
			f:    api.TemplateMapFailure{Error: "migration failed", Attempts: 3, At: time.Now()},
			want: []string{"3 failures", "only after an upgrade", "/state/images/templates/tpl/map-failed.json"},
		},
	}
	for _, tt := range tests {
		tpl.MapFailure = &tt.f
		got := mapFailureLine(tpl)
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("mapFailureLine = %q, want it to contain %q", got, w)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(got, n) {
				t.Errorf("mapFailureLine = %q, want no %q", got, n)
			}
		}
	}
}
