package mcpserver_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"banger/client"
	"banger/internal/daemon/daemontest"
	"banger/internal/mcpserver"
	"banger/internal/server"
)

// world is a daemon with the fake VMM (whose guest is this host) served on
// a real socket, and the state directory MCP servers keep ownership in.
type world struct {
	*daemontest.World
	cl       *client.Client
	stateDir string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	return serve(t, daemontest.New(t, nil))
}

// newForkWorld is a world whose VMs can be forked: its network leases
// addresses and its guests answer reidentify.
func newForkWorld(t *testing.T) *world {
	t.Helper()
	w, _, _ := daemontest.NewForkable(t, nil)
	return serve(t, w)
}

// serve serves w's daemon on its socket until the test ends.
func serve(t *testing.T, w *daemontest.World) *world {
	t.Helper()
	sock, err := server.Listen(w.Layout)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.New(w.D, slog.New(slog.DiscardHandler), cancel).Serve(ctx, sock) }()
	t.Cleanup(func() { cancel(); <-done; sock.Close() })
	return &world{World: w, cl: client.New(w.Layout.SocketPath), stateDir: w.Layout.StateDir}
}

// agent is an MCP client session connected in memory to a banger MCP
// server, recording the progress notifications it receives.
type agent struct {
	t  *testing.T
	cs *mcp.ClientSession

	mu       sync.Mutex
	progress []*mcp.ProgressNotificationParams
}

// connect starts an MCP server with scope sc over w and connects a client
// to it; both end with the test.
func (w *world) connect(t *testing.T, sc mcpserver.Scope) *agent {
	t.Helper()
	s, err := mcpserver.New(mcpserver.Options{Client: w.cl, StateDir: w.stateDir, Scope: sc, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	st, ct := mcp.NewInMemoryTransports()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, st) }()
	a := &agent{t: t}
	c := mcp.NewClient(&mcp.Implementation{Name: "test-agent", Version: "1"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
			a.mu.Lock()
			a.progress = append(a.progress, r.Params)
			a.mu.Unlock()
		},
	})
	cs, err := c.Connect(ctx, ct, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	a.cs = cs
	t.Cleanup(func() { cs.Close(); cancel(); <-done })
	return a
}

// call calls a tool and decodes its structured result into out (when
// set); it returns the error text when the tool failed.
func (a *agent) call(name string, args map[string]any, out any, progressToken ...any) string {
	a.t.Helper()
	p := &mcp.CallToolParams{Name: name, Arguments: args}
	if len(progressToken) > 0 {
		p.SetProgressToken(progressToken[0])
	}
	res, err := a.cs.CallTool(context.Background(), p)
	if err != nil {
		a.t.Fatalf("calling %s: %v", name, err)
	}
	if res.IsError {
		var msg []string
		for _, c := range res.Content {
			if tc, ok := c.(*mcp.TextContent); ok {
				msg = append(msg, tc.Text)
			}
		}
		return strings.Join(msg, "\n")
	}
	if out != nil {
		reflect.ValueOf(out).Elem().SetZero() // fields a result leaves out are zero, not the last call's
		data, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(data, out); err != nil {
			a.t.Fatalf("decoding %s result %s: %v", name, data, err)
		}
	}
	return ""
}

// must calls a tool that has to succeed.
func (a *agent) must(name string, args map[string]any, out any, progressToken ...any) {
	a.t.Helper()
	if msg := a.call(name, args, out, progressToken...); msg != "" {
		a.t.Fatalf("%s(%v) failed: %s", name, args, msg)
	}
}

// refused calls a tool that has to fail with a message containing want.
func (a *agent) refused(name string, args map[string]any, want string) {
	a.t.Helper()
	msg := a.call(name, args, nil)
	if msg == "" {
		a.t.Fatalf("%s(%v) succeeded; want a refusal containing %q", name, args, want)
	}
	if !strings.Contains(msg, want) {
		a.t.Errorf("%s(%v) refused with %q; want it to contain %q", name, args, msg, want)
	}
}

type vmView struct {
	Name  string `json:"name"`
	Image string `json:"image"`
	State string `json:"state"`
	Owned bool   `json:"owned"`
}

type vmList struct {
	VMs []vmView `json:"vms"`
}

func names(l vmList) string {
	var n []string
	for _, v := range l.VMs {
		n = append(n, v.Name)
	}
	return strings.Join(n, ",")
}

func sleep() { time.Sleep(50 * time.Millisecond) }
