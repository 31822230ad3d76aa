package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"banger/api"
	"banger/internal/agentproto"
	"banger/internal/paths"
)

// hostile are strings a guest or a registry could send, each of which a
// terminal would act on if printed raw.
var hostile = map[string]string{
	"osc title":      "\x1b]0;pwned\x07",
	"csi clear":      "\x1b[2J\x1b[H",
	"fake prompt":    "done\r$ sudo rm -rf ~ ",
	"bel":            "ding\x07",
	"c1 csi (utf-8)": "\u009b31mred",
	"c1 csi (byte)":  "\x9b31mred",
	"invalid utf-8":  "bad\xff\xfe",
	"del":            "x\x7fy",
	"newline, tab":   "a\nb\tc",
	"bidi override":  "evil\u202egnp.exe",
}

// friendly is printable Unicode, which must come out as it went in.
const friendly = "café ☕ 名前"

func TestSafe(t *testing.T) {
	for _, tt := range []struct{ in, want, wantText string }{
		{"plain text", "plain text", "plain text"},
		{friendly, friendly, friendly},
		{"\x1b]0;pwned\x07", `\x1b]0;pwned\x07`, `\x1b]0;pwned\x07`},
		{"done\r$ ", `done\x0d$ `, `done\x0d$ `},
		{"\u009b31m", `\u009b31m`, `\u009b31m`},
		{"\x9b31m", `\x9b31m`, `\x9b31m`},
		{"bad\xff", `bad\xff`, `bad\xff`},
		{"x\x7fy", `x\x7fy`, `x\x7fy`},
		{"a\nb\tc", `a\x0ab\x09c`, "a\nb\tc"},
		{"rtl\u202e", `rtl\u202e`, `rtl\u202e`},
		{"tag\U000e0041", `tag\U000e0041`, `tag\U000e0041`},
	} {
		if got := safe(tt.in); got != tt.want {
			t.Errorf("safe(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := safeText(tt.in); got != tt.wantText {
			t.Errorf("safeText(%q) = %q, want %q", tt.in, got, tt.wantText)
		}
	}
}

// checkTerminalSafe fails if out holds anything a terminal acts on: C0
// controls but newline (and the spaces tables pad with), DEL, C1
// controls, bidi overrides or invalid UTF-8.
func checkTerminalSafe(t *testing.T, what, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Errorf("%s: output is not valid UTF-8: %q", what, out)
	}
	for i, r := range out {
		if r < 0x20 && r != '\n' || r == 0x7f || r >= 0x80 && r < 0xa0 || r == '\u202e' {
			t.Errorf("%s: raw %U at byte %d of the output:\n%q", what, r, i, out)
			return
		}
	}
}

// fakeDaemon answers the CLI's GETs from a table of JSON bodies, on the
// socket the CLI looks for: it stands in for a daemon relaying what a
// hostile guest and a hostile registry said.
func fakeDaemon(t *testing.T, answers map[string]any) {
	t.Helper()
	rt, err := os.MkdirTemp("", "bgesc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rt) })
	t.Setenv("XDG_RUNTIME_DIR", rt)
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("BANGER_NO_AUTOSTART", "1")
	layout, err := paths.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(layout.SocketPath), 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", layout.SocketPath)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, ok := answers[r.URL.Path]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(api.Error{Kind: "not_found", Message: "no " + r.URL.Path})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	})}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
}

// TestHostileTextIsEscaped runs every command that shows text from a
// guest or a registry against a daemon relaying hostile strings: nothing
// a terminal acts on reaches the output, printable Unicode is kept, and
// --json stays exact.
func TestHostileTextIsEscaped(t *testing.T) {
	now := time.Now()
	for name, h := range hostile {
		t.Run(name, func(t *testing.T) {
			s := h + " " + friendly
			sess := api.Session{VM: "dev", Name: s, Argv: []string{"sh", "-c", s}, Cwd: s, StdinMode: api.SessionPipe,
				State: api.SessionExited, Exit: &api.ExitStatus{Signal: s}, Note: s, StartedAt: now}
			ports := []agentproto.Port{{Proto: "tcp", Addr: s, Port: 8080, PID: 42, Process: s}}
			img := api.Image{Name: "img", Rootfs: s, Kernel: s, KernelRef: s, Source: s, Digest: s, CreatedAt: now,
				Tools: []string{"opencode"}, ToolVersions: map[string]string{"opencode": s}}
			kern := api.Kernel{Name: "k", Version: s, Arch: s, Description: s, Source: s, SHA256: s, CreatedAt: now}
			ev := api.LogEntry{ID: 1, Time: now, Level: s, Subject: "vm/dev", Message: "could not copy auth files into vm dev: " + s}
			fakeDaemon(t, map[string]any{
				"/v1/daemon": api.DaemonStatus{PID: 1, Version: "test"},
				"/v1/vms/dev": api.VM{Name: "dev", State: api.VMRunning, Image: s, LastError: "boot failed; console:\n" + s, CreatedAt: now,
					Forwards: []api.Forward{{VM: "dev", HostAddr: "127.0.0.1:9", HostPort: 9, GuestPort: 9, LastError: s}}},
				"/v1/vms/dev/forwards":   []api.Forward{{VM: "dev", HostAddr: "127.0.0.1:9", HostPort: 9, GuestPort: 9, LastError: s}},
				"/v1/vms/dev/stats":      api.VMStats{Name: "dev", State: api.VMRunning, Busy: s, Current: &api.StatsSample{Time: now, GuestError: s, VMMError: s}},
				"/v1/vms/dev/ports":      ports,
				"/v1/vms/dev/sessions":   []api.Session{sess},
				"/v1/vms/dev/sessions/x": sess,
				"/v1/events":             []api.LogEntry{ev},
				"/v1/images":             []api.Image{img},
				"/v1/images/img":         img,
				"/v1/templates":          []api.Template{{Name: "t", Image: s, From: s, VMM: s, VMMVersion: s, CreatedAt: now}},
				"/v1/templates/t":        api.Template{Name: "t", Image: s, From: s, VMM: s, VMMVersion: s, Dir: s, CreatedAt: now},
				"/v1/kernels":            []api.Kernel{kern},
				"/v1/kernels/catalog":    api.Catalog{Kernels: []api.CatalogEntry{{Name: s, Version: s, Arch: s, Description: s}}},
			})
			for _, args := range [][]string{
				{"vm", "ports", "dev"},
				{"vm", "session", "list", "dev"},
				{"vm", "session", "show", "dev", "x"},
				{"vm", "show", "dev"},
				{"vm", "stats", "dev"},
				{"events"},
				{"image", "list"},
				{"image", "show", "img"},
				{"image", "show", "t"},
				{"kernel", "list"},
				{"kernel", "list", "--available"},
			} {
				out := runCLI(t, args...)
				what := strings.Join(args, " ")
				checkTerminalSafe(t, what, out)
				if !strings.Contains(out, friendly) {
					t.Errorf("%s: printable Unicode %q lost:\n%s", what, friendly, out)
				}
			}
			// --json is exact: what the daemon said, byte for byte once decoded.
			var got []agentproto.Port
			if err := json.Unmarshal([]byte(runCLI(t, "vm", "ports", "dev", "--json")), &got); err != nil {
				t.Fatal(err)
			}
			var want string // what the daemon's JSON carries (invalid UTF-8 becomes U+FFFD there)
			b, _ := json.Marshal(s)
			json.Unmarshal(b, &want)
			if len(got) != 1 || got[0].Process != want {
				t.Errorf("vm ports --json = %+v, want process %q", got, want)
			}
		})
	}
}

func runCLI(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	root := NewRoot(&out, &errb)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := root.ExecuteContext(ctx); err != nil {
		t.Fatalf("banger %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	checkTerminalSafe(t, strings.Join(args, " ")+" (stderr)", errb.String())
	return out.String()
}

// TestProgressEscapesHostileText: step messages, build log lines and item
// names (layer names from a registry, command output from a build) are
// drawn escaped; only the view's own line redraws reach the terminal.
func TestProgressEscapesHostileText(t *testing.T) {
	for name, h := range hostile {
		var buf bytes.Buffer
		p := &progressView{w: &buf, enabled: true}
		now := time.Now()
		p.Event(api.Event{Time: now, Step: "pull", Message: h})
		p.Event(api.Event{Time: now, Step: "log", Message: h})
		p.Event(api.Event{Time: now, Step: "download", Item: h, Current: 1, Total: 2})
		p.Event(api.Event{Time: now, Step: "download", Item: h, Current: 2, Total: 2, Done: true})
		p.Close()
		checkTerminalSafe(t, "progress with "+name, strings.ReplaceAll(buf.String(), "\r\033[K", ""))
	}
}
