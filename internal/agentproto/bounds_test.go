package agentproto_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"banger/api/errdefs"
	"banger/internal/agentproto"
	"banger/internal/guestagent"
	"banger/internal/testutil/hostileguest"
)

// hostileClient connects a client to g, which relays what it does not
// answer itself to a real agent.
func hostileClient(t *testing.T, g *hostileguest.Guest) *agentproto.Client {
	t.Helper()
	dir := t.TempDir()
	real, err := guestagent.New(guestagent.Config{
		Paths: guestagent.Paths{
			StateDir: filepath.Join(dir, "state"), ConfigDir: filepath.Join(dir, "etc"),
			Home: filepath.Join(dir, "home"), SSHDir: filepath.Join(dir, "ssh"),
		},
		InitMode: agentproto.InitModeDev,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(real.Close)
	host, guestEnd := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		g.Serve(ctx, real, guestEnd)
	}()
	t.Cleanup(func() { cancel(); <-served })
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
	defer ccancel()
	cl, err := agentproto.NewClient(cctx, host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func TestHostileRepliesAreBounded(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	manyArgs := make([]string, 600)
	for i := range manyArgs {
		manyArgs[i] = long(1000)
	}
	tests := []struct {
		name    string
		call    string
		handler hostileguest.Handler
		run     func(context.Context, *agentproto.Client) error
		dropped bool // the client drops the connection
	}{{
		// ~13 MiB: under the generic 16 MiB line limit, far over what a
		// stats reply needs.
		name: "stats reply larger than a stats sample needs", call: agentproto.CallStats,
		handler: hostileguest.Reply(hostileguest.HugeStats(200, 16<<10)),
		run: func(ctx context.Context, cl *agentproto.Client) error {
			_, err := cl.Stats(ctx)
			return wantErr(err, agentproto.ErrLineTooLong)
		},
		dropped: true,
	}, {
		name: "stats with thousands of disks", call: agentproto.CallStats,
		handler: hostileguest.RawLine(hostileguest.ResultLine([]byte(`{"disks":` + string(hostileguest.Many(3000, `{"device":"/dev/x"}`)) + `}`))),
		run: func(ctx context.Context, cl *agentproto.Client) error {
			s, err := cl.Stats(ctx)
			if err != nil {
				return err
			}
			if len(s.Disks) != 32 || cap(s.Disks) > 64 {
				return errors.New("disks not cut to the first 32")
			}
			return nil
		},
	}, {
		name: "stats names cut", call: agentproto.CallStats,
		handler: hostileguest.Reply(hostileguest.HugeStats(2, 6000)),
		run: func(ctx context.Context, cl *agentproto.Client) error {
			s, err := cl.Stats(ctx)
			if err != nil {
				return err
			}
			for _, d := range s.Disks {
				if len(d.Device)+len(d.Mount)+len(d.FSType) > 512 {
					return errors.New("disk strings kept whole")
				}
			}
			for _, n := range s.Networks {
				if len(n.Name) > 32 {
					return errors.New("interface name kept whole")
				}
			}
			if len(s.Disks) != 2 || !strings.HasPrefix(s.Disks[1].Device, "/dev/00000001") {
				return errors.New("disks lost")
			}
			return nil
		},
	}, {
		name: "thousands of ports", call: agentproto.CallPorts,
		handler: hostileguest.RawLine(hostileguest.ResultLine(hostileguest.Many(5000, `{"proto":"tcp","port":1}`))),
		run: func(ctx context.Context, cl *agentproto.Client) error {
			_, err := cl.Ports(ctx)
			return wantErr(err, errdefs.ErrInvalid)
		},
	}, {
		name: "port process name cut", call: agentproto.CallPorts,
		handler: hostileguest.Reply([]agentproto.Port{{Proto: "tcp", Port: 22, Process: hostileguest.Escapes + long(100<<10)}}),
		run: func(ctx context.Context, cl *agentproto.Client) error {
			ps, err := cl.Ports(ctx)
			if err != nil {
				return err
			}
			if len(ps) != 1 || len(ps[0].Process) > 256 || !strings.HasPrefix(ps[0].Process, hostileguest.Escapes) {
				return errors.New("process name not cut to 256 bytes, or changed")
			}
			return nil
		},
	}, {
		name: "session list over its limit", call: agentproto.CallSessionList,
		handler: hostileguest.Oversized(2 << 20),
		run: func(ctx context.Context, cl *agentproto.Client) error {
			_, err := cl.Sessions(ctx)
			return wantErr(err, agentproto.ErrLineTooLong)
		},
		dropped: true,
	}, {
		name: "thousands of sessions", call: agentproto.CallSessionList,
		handler: hostileguest.RawLine(hostileguest.ResultLine(hostileguest.Many(5000, `{"name":"s"}`))),
		run: func(ctx context.Context, cl *agentproto.Client) error {
			_, err := cl.Sessions(ctx)
			return wantErr(err, errdefs.ErrInvalid)
		},
	}, {
		name: "session argv cut", call: agentproto.CallSessionList,
		handler: hostileguest.Reply([]agentproto.Session{{Name: "s", Argv: manyArgs, Note: long(8 << 10)}}),
		run: func(ctx context.Context, cl *agentproto.Client) error {
			ss, err := cl.Sessions(ctx)
			if err != nil {
				return err
			}
			if len(ss) != 1 || len(ss[0].Argv) > 256 || len(ss[0].Note) > 1024 {
				return errors.New("session argv or note not cut")
			}
			return nil
		},
	}, {
		name: "info strings cut", call: agentproto.CallInfo,
		handler: hostileguest.Reply(agentproto.Info{Hostname: long(12 << 10), Kernel: long(2000)}),
		run: func(ctx context.Context, cl *agentproto.Client) error {
			in, err := cl.Info(ctx)
			if err != nil {
				return err
			}
			if len(in.Hostname) > 256 || len(in.Kernel) > 256 {
				return errors.New("info strings not cut")
			}
			return nil
		},
	}, {
		name: "error message cut", call: agentproto.CallPorts,
		handler: hostileguest.ErrorReply(errdefs.KindConflict, long(60<<10)),
		run: func(ctx context.Context, cl *agentproto.Client) error {
			_, err := cl.Ports(ctx)
			if !errors.Is(err, errdefs.ErrConflict) {
				return errors.New("error kind lost: " + errString(err))
			}
			if len(err.Error()) > 5<<10 {
				return errors.New("error message not cut")
			}
			return nil
		},
	}, {
		name: "log end frame error cut", call: agentproto.CallSessionLogs,
		handler: hostileguest.Frames(agentproto.FrameStdout, agentproto.End{Error: &agentproto.Error{Kind: errdefs.KindInternal, Message: long(512 << 10)}}, []byte("out")),
		run: func(ctx context.Context, cl *agentproto.Client) error {
			var out bytes.Buffer
			err := cl.SessionLogs(ctx, agentproto.SessionLogsRequest{Name: "s"}, &out)
			if err == nil || out.String() != "out" {
				return errors.New("logs not delivered with their error")
			}
			if len(err.Error()) > 5<<10 {
				return errors.New("end frame error not cut")
			}
			return nil
		},
	}, {
		name: "malformed reply", call: agentproto.CallStats,
		handler: hostileguest.RawLine([]byte(`{"result":{"disks":[{"device":`)),
		run: func(ctx context.Context, cl *agentproto.Client) error {
			_, err := cl.Stats(ctx)
			if err == nil {
				return errors.New("malformed reply accepted")
			}
			return nil
		},
	}, {
		name: "silent guest", call: agentproto.CallPorts,
		handler: hostileguest.Silent(),
		run: func(ctx context.Context, cl *agentproto.Client) error {
			ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			_, err := cl.Ports(ctx)
			return wantErr(err, context.DeadlineExceeded)
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := hostileguest.New()
			cl := hostileClient(t, g)
			g.Handle(tt.call, tt.handler)
			ctx := context.Background()
			if err := tt.run(ctx, cl); err != nil {
				t.Fatal(err)
			}
			if g.Calls(tt.call) != 1 {
				t.Fatalf("the hostile guest answered %s %d times; want 1", tt.call, g.Calls(tt.call))
			}
			// A reply over its limit drops the connection (the guest is
			// still sending); any other bad reply costs one stream.
			select {
			case <-cl.Done():
				if !tt.dropped {
					t.Fatal("the connection was dropped")
				}
				return
			default:
				if tt.dropped {
					t.Fatal("the connection survived a reply over its limit")
				}
			}
			if _, err := cl.Info(ctx); err != nil {
				t.Fatalf("info after the hostile reply: %v", err)
			}
		})
	}
}

func wantErr(err, want error) error {
	if !errors.Is(err, want) {
		return errors.New("got error " + errString(err) + "; want " + want.Error())
	}
	return nil
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
