package doctor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"banger/internal/paths"
)

// mkdirs creates the layout's top-level directories with mode.
func mkdirs(t *testing.T, l paths.Layout, mode os.FileMode) {
	t.Helper()
	for _, d := range l.Private() {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, mode); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDirModesCheck(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, l paths.Layout)
		want  Status
		// detail and fix are what the result must say, for layout l.
		detail, fix func(l paths.Layout) []string
	}{
		{"not created yet", nil, Pass, func(paths.Layout) []string { return []string{"yours alone"} }, nil},
		{"all private", func(t *testing.T, l paths.Layout) { mkdirs(t, l, 0o700) }, Pass,
			func(paths.Layout) []string { return []string{"yours alone"} }, nil},
		{"cache readable by others", func(t *testing.T, l paths.Layout) {
			mkdirs(t, l, 0o700)
			os.Chmod(l.CacheDir, 0o755)
		}, Warn,
			func(l paths.Layout) []string { return []string{l.CacheDir + " has mode 755", "can read"} },
			func(l paths.Layout) []string { return []string{"chmod 700 " + l.CacheDir + " "} }},
		{"state and runtime open", func(t *testing.T, l paths.Layout) {
			mkdirs(t, l, 0o700)
			os.Chmod(l.StateDir, 0o750)
			os.Chmod(l.RuntimeDir, 0o777)
		}, Fail,
			func(l paths.Layout) []string {
				return []string{l.StateDir + " has mode 750", l.RuntimeDir + " has mode 777", "can replace"}
			},
			func(l paths.Layout) []string { return []string{"chmod 700 " + l.StateDir + " " + l.RuntimeDir} }},
		{"state is a file", func(t *testing.T, l paths.Layout) {
			os.MkdirAll(filepath.Dir(l.StateDir), 0o700)
			os.WriteFile(l.StateDir, nil, 0o600)
		}, Fail,
			func(l paths.Layout) []string { return []string{l.StateDir + " is not a directory"} },
			func(l paths.Layout) []string { return []string{"remove " + l.StateDir} }},
	}
	if os.Getuid() == 0 {
		tests = append(tests, struct {
			name        string
			setup       func(t *testing.T, l paths.Layout)
			want        Status
			detail, fix func(l paths.Layout) []string
		}{"runtime dir of another user", func(t *testing.T, l paths.Layout) {
			mkdirs(t, l, 0o700)
			os.Chown(l.RuntimeDir, 65534, 65534)
		}, Fail,
			func(l paths.Layout) []string { return []string{l.RuntimeDir + " belongs to uid 65534"} },
			func(l paths.Layout) []string { return []string{"remove " + l.RuntimeDir} }})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := fcEnv(t)
			if tt.setup != nil {
				tt.setup(t, e.Layout)
			}
			r := checkDirModes(context.Background(), e)
			if r.Status != tt.want {
				t.Errorf("status %s, want %s: %+v", r.Status, tt.want, r)
			}
			if tt.detail != nil {
				for _, want := range tt.detail(e.Layout) {
					if !strings.Contains(r.Detail, want) {
						t.Errorf("detail %q lacks %q", r.Detail, want)
					}
				}
			}
			if tt.fix != nil {
				for _, want := range tt.fix(e.Layout) {
					if !strings.Contains(r.Fix, want) {
						t.Errorf("fix %q lacks %q", r.Fix, want)
					}
				}
			}
		})
	}
}
