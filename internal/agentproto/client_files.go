package agentproto

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

const copyChunk = 256 << 10

// CopyIn extracts the tar stream r into the guest directory dst (created
// when missing). The guest refuses entries that would land outside dst:
// absolute names, "..", and links pointing out. Modes are kept; ownership
// too when the agent runs as root.
func (c *Client) CopyIn(ctx context.Context, dst string, r io.Reader) (CopyResult, error) {
	cl, err := c.open(ctx, CallCopyIn, CopyRequest{Path: dst}, nil)
	if err != nil {
		return CopyResult{}, fmt.Errorf("copying into %s: %w", dst, err)
	}
	defer cl.close()
	ends := make(chan endOrErr, 1)
	go func() {
		end, err := readFrames(cl, io.Discard, io.Discard)
		ends <- endOrErr{end, err}
		// The guest gave up early (bad entry): stop our writes.
		cl.st.SetWriteDeadline(time.Now())
	}()
	werr := sendData(cl, r)
	res := <-ends
	if err := copyOutcome(ctx, res); err != nil {
		return CopyResult{}, fmt.Errorf("copying into %s: %w", dst, err)
	}
	if werr != nil {
		return CopyResult{}, fmt.Errorf("copying into %s: %w", dst, werr)
	}
	return *res.end.Copy, nil
}

// sendData streams r as stdin frames followed by an EOF control frame.
func sendData(cl *call, r io.Reader) error {
	fw := NewFrameWriter(cl.st)
	buf := make([]byte, copyChunk)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if werr := fw.Write(FrameStdin, buf[:n]); werr != nil {
				return fmt.Errorf("sending data: %w", werr)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading local data: %w", err)
		}
	}
	if err := fw.WriteJSON(FrameControl, Control{Op: ControlEOF}); err != nil {
		return fmt.Errorf("sending end of data: %w", err)
	}
	return nil
}

// CopyOut writes a tar stream of the guest path src to w. Entries are named
// from src's base name, as with tar -C dir(src) base(src).
func (c *Client) CopyOut(ctx context.Context, src string, w io.Writer) (CopyResult, error) {
	cl, err := c.open(ctx, CallCopyOut, CopyRequest{Path: src}, nil)
	if err != nil {
		return CopyResult{}, fmt.Errorf("copying out %s: %w", src, err)
	}
	defer cl.close()
	end, err := readFrames(cl, w, io.Discard)
	if err := copyOutcome(ctx, endOrErr{end, err}); err != nil {
		return CopyResult{}, fmt.Errorf("copying out %s: %w", src, err)
	}
	return *end.Copy, nil
}

type endOrErr struct {
	end End
	err error
}

func copyOutcome(ctx context.Context, r endOrErr) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case r.err != nil:
		return r.err
	case r.end.Error != nil:
		return r.end.Error.Err()
	case r.end.Copy == nil:
		return errors.New("agent sent no copy result")
	}
	return nil
}

// PutFiles writes files under /root in the guest (credential sync). Each is
// replaced atomically; parents are created 0700.
func (c *Client) PutFiles(ctx context.Context, files []File) error {
	if err := c.do(ctx, CallPutFiles, PutFilesRequest{Files: files}, nil); err != nil {
		return fmt.Errorf("putting files in the guest: %w", err)
	}
	return nil
}

// AuthorizeKey adds an authorized_keys line for root in the guest.
func (c *Client) AuthorizeKey(ctx context.Context, key string) error {
	if err := c.do(ctx, CallAuthorizeKey, AuthorizeKeyRequest{Key: key}, nil); err != nil {
		return fmt.Errorf("authorizing ssh key in the guest: %w", err)
	}
	return nil
}

// HostKeys returns the guest SSH server's public host keys for pinning.
func (c *Client) HostKeys(ctx context.Context) (HostKeys, error) {
	var hk HostKeys
	if err := c.do(ctx, CallHostKey, nil, &hk); err != nil {
		return HostKeys{}, fmt.Errorf("reading guest ssh host keys: %w", err)
	}
	return hk, nil
}
