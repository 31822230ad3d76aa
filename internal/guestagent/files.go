package guestagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"banger/api/errdefs"
	"banger/internal/agentproto"
	"banger/internal/tarcopy"
)

// copyIn serves copy_in: stdin frames carry a tar stream that is extracted
// under the target directory, an eof control frame ends it. On a refused
// entry the End frame goes out at once and the rest is read and dropped.
func (s *Server) copyIn(ctx context.Context, cn *conn, st *stream) error {
	var req agentproto.CopyRequest
	if err := st.decode(&req); err != nil {
		return st.reply(nil, err)
	}
	root, err := openTargetDir(req.Path)
	if err != nil {
		return st.reply(nil, err)
	}
	defer root.Close()
	if err := st.reply(nil, nil); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(readData(st, pw)) }()
	res, err := extractTar(root, pr, os.Geteuid() == 0)
	if err != nil {
		st.end(agentproto.End{Error: agentproto.WireError(fmt.Errorf("extracting into %s: %w", req.Path, err))})
		io.Copy(io.Discard, pr)
		return err
	}
	// Trailing padding after the tar end marker, up to the eof frame.
	if _, err := io.Copy(io.Discard, pr); err != nil {
		return st.end(agentproto.End{Error: agentproto.WireError(err)})
	}
	return st.end(agentproto.End{Copy: &res})
}

func openTargetDir(dir string) (*os.Root, error) {
	if !filepath.IsAbs(dir) {
		return nil, errdefs.Invalid("copy target %q must be an absolute path", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", dir, err)
	}
	return root, nil
}

// readData copies stdin frames to w until the eof control frame.
func readData(st *stream, w io.Writer) error {
	var buf []byte
	for {
		t, payload, err := agentproto.ReadFrame(st.br, buf)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errdefs.Invalid("stream ended before the eof control frame")
			}
			return err
		}
		buf = payload[:0]
		switch t {
		case agentproto.FrameStdin:
			if _, err := w.Write(payload); err != nil {
				return err
			}
		case agentproto.FrameControl:
			var ctl agentproto.Control
			if json.Unmarshal(payload, &ctl) == nil && ctl.Op == agentproto.ControlEOF {
				return nil
			}
			return errdefs.Invalid("unexpected control frame %q in copy data", payload)
		default:
			return errdefs.Invalid("unexpected %s frame in copy data", t)
		}
	}
}

// copyOut serves copy_out: the tar stream goes out as stdout frames.
func (s *Server) copyOut(ctx context.Context, cn *conn, st *stream) error {
	var req agentproto.CopyRequest
	if err := st.decode(&req); err != nil {
		return st.reply(nil, err)
	}
	if !filepath.IsAbs(req.Path) {
		return st.reply(nil, errdefs.Invalid("copy source %q must be an absolute path", req.Path))
	}
	if _, err := os.Lstat(req.Path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			err = errdefs.NotFound("%s does not exist in the guest", req.Path)
		}
		return st.reply(nil, err)
	}
	if err := st.reply(nil, nil); err != nil {
		return err
	}
	res, err := tarcopy.Write(req.Path, "", st.fw.Stream(agentproto.FrameStdout), nil)
	if err != nil {
		return st.end(agentproto.End{Error: agentproto.WireError(err)})
	}
	return st.end(agentproto.End{Copy: &agentproto.CopyResult{Entries: res.Entries, Bytes: res.Bytes}})
}
