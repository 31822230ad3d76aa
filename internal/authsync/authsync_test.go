package authsync

import (
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  string
	}{
		{"", []string{}, ""},
		{"claude, opencode", []string{"opencode", "claude"}, ""},
		{"pi,pi", []string{"pi"}, ""},
		{"opencode,codex", nil, `"codex" is not a tool banger syncs credentials for; use any of opencode, claude, pi`},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Parse(%q) err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("Parse(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestFilesFollowTools(t *testing.T) {
	got := Files([]string{"pi", "opencode"})
	if len(got) != 2 || got[0].File != ".local/share/opencode/auth.json" || got[1].File != ".pi/agent/auth.json" {
		t.Errorf("Files = %+v", got)
	}
	if Describe(nil) != "off" || Describe([]string{"claude"}) != "claude" {
		t.Error("Describe")
	}
}
