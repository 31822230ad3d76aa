package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"banger/api"
	"banger/api/errdefs"
)

// CopyOut starts streaming a tar of the guest path src. Read the archive
// from the returned stream, then call Finish, which says whether the
// guest sent all of it.
func (c *Client) CopyOut(ctx context.Context, vm, src string) (*CopyStream, error) {
	resp, err := c.do(ctx, "GET", "/vms/"+esc(vm)+"/files?"+url.Values{"path": {src}}.Encode(), nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return &CopyStream{resp: resp}, nil
}

// CopyStream is a tar archive coming out of a guest.
type CopyStream struct {
	resp *http.Response
}

// Read reads the archive.
func (s *CopyStream) Read(p []byte) (int, error) { return s.resp.Body.Read(p) }

// maxTrailing bounds what Finish reads past the point where the reader of
// the archive stopped (the tar end marker's padding).
const maxTrailing = 1 << 20

// Finish reads what is left of the stream and returns how the copy
// ended: the guest's error when it stopped early.
func (s *CopyStream) Finish() (api.CopyResult, error) {
	defer s.resp.Body.Close()
	n, err := io.Copy(io.Discard, io.LimitReader(s.resp.Body, maxTrailing+1))
	if err != nil {
		return api.CopyResult{}, fmt.Errorf("reading the copy from bangerd: %w", err)
	}
	if n > maxTrailing {
		return api.CopyResult{}, errdefs.Invalid("the guest sent more than %d bytes after the end of its archive", maxTrailing)
	}
	t := s.resp.Trailer
	if raw := t.Get(api.TrailerCopyError); raw != "" {
		var e api.Error
		if json.Unmarshal([]byte(raw), &e) != nil || e.Message == "" {
			return api.CopyResult{}, errors.New("the copy failed in bangerd; see 'banger daemon logs'")
		}
		return api.CopyResult{}, errdefs.FromKind(e.Kind, e.Message)
	}
	entries, err1 := strconv.Atoi(t.Get(api.TrailerCopyEntries))
	bytes, err2 := strconv.ParseInt(t.Get(api.TrailerCopyBytes), 10, 64)
	if err1 != nil || err2 != nil {
		return api.CopyResult{}, errors.New("bangerd ended the copy without a result; see 'banger daemon logs'")
	}
	return api.CopyResult{Entries: entries, Bytes: bytes}, nil
}

// Close abandons the stream.
func (s *CopyStream) Close() error { return s.resp.Body.Close() }

// CopyIn streams the tar archive r into the guest directory dir (created
// when missing).
func (c *Client) CopyIn(ctx context.Context, vm, dir string, r io.Reader) (api.CopyResult, error) {
	resp, err := c.send(ctx, "PUT", "/vms/"+esc(vm)+"/files?"+url.Values{"path": {dir}}.Encode(), io.NopCloser(r), "application/x-tar")
	if err != nil {
		return api.CopyResult{}, fmt.Errorf("copying into vm %s through bangerd: %w", vm, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return api.CopyResult{}, decodeError(resp)
	}
	var res api.CopyResult
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&res); err != nil {
		return api.CopyResult{}, fmt.Errorf("decoding bangerd reply to a copy: %w", err)
	}
	return res, nil
}

// StatPath says what is at a guest path.
func (c *Client) StatPath(ctx context.Context, vm, p string) (api.PathStat, error) {
	var st api.PathStat
	err := c.call(ctx, "GET", "/vms/"+esc(vm)+"/files/stat?"+url.Values{"path": {p}}.Encode(), nil, &st)
	return st, err
}
