package kernel

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"banger/api/errdefs"
)

// open returns a reader of a's bytes and the offset it starts at: have when
// the server honoured our range request, 0 when the file comes whole.
func (d *downloader) open(ctx context.Context, a artifact, have int64) (io.ReadCloser, int64, error) {
	u, err := url.Parse(a.file.URL)
	if err != nil {
		return nil, 0, errdefs.Invalid("%s url %q: %v", a.name, a.file.URL, err)
	}
	if u.Scheme != "file" {
		return d.openHTTP(ctx, a, have)
	}
	// Local files are cheap to read again, so they never resume.
	f, err := os.Open(u.Path)
	if err != nil {
		return nil, 0, errdefs.Unavailable("opening %s for %s: %v", a.file.URL, a.name, err)
	}
	if fi, err := f.Stat(); err == nil && fi.Size() != a.file.Size {
		f.Close()
		return nil, 0, d.sizeMismatch(a, fi.Size())
	}
	return f, 0, nil
}

func (d *downloader) openHTTP(ctx context.Context, a artifact, have int64) (io.ReadCloser, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.file.URL, nil)
	if err != nil {
		return nil, 0, errdefs.Invalid("%s url %q: %v", a.name, a.file.URL, err)
	}
	// Ranges and sizes must count bytes of the file itself; without this Go
	// asks for gzip and would decompress behind our back.
	req.Header.Set("Accept-Encoding", "identity")
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
		// If-Range makes a server whose file changed send it whole (200)
		// instead of a tail that does not fit our prefix.
		if etag, err := os.ReadFile(d.etagPath(a)); err == nil && len(etag) > 0 {
			req.Header.Set("If-Range", string(etag))
		}
	}
	resp, err := d.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, 0, fmt.Errorf("downloading %s from %s: %w", a.name, a.file.URL, ctx.Err())
		}
		return nil, 0, errdefs.Unavailable("downloading %s from %s: %v", a.name, a.file.URL, err)
	}
	if err := d.checkResponse(a, resp, have); err != nil {
		resp.Body.Close()
		return nil, 0, err
	}
	if resp.StatusCode == http.StatusPartialContent {
		return resp.Body, have, nil
	}
	d.saveETag(a, resp.Header.Get("ETag"))
	return resp.Body, 0, nil
}

// checkResponse accepts a 200 of the right length or a 206 continuing
// exactly at have.
func (d *downloader) checkResponse(a artifact, resp *http.Response, have int64) error {
	switch {
	case resp.StatusCode == http.StatusOK:
		if resp.ContentLength >= 0 && resp.ContentLength != a.file.Size {
			return d.sizeMismatch(a, resp.ContentLength)
		}
		return nil
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != have {
			return errRestart
		}
		if total >= 0 && total != a.file.Size {
			return d.sizeMismatch(a, total)
		}
		return nil
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && have > 0:
		return errRestart
	}
	return errdefs.Unavailable("downloading %s: %s answered %s", a.name, a.file.URL, resp.Status)
}

func (d *downloader) sizeMismatch(a artifact, served int64) error {
	d.discardAll()
	return errdefs.Invalid("%s size mismatch: catalog says %d bytes, %s has %d; nothing was kept — the catalog entry or its mirror is wrong", a.name, a.file.Size, a.file.URL, served)
}

// saveETag remembers a strong validator for If-Range on a later resume;
// weak ETags are not allowed there, so they are forgotten.
func (d *downloader) saveETag(a artifact, etag string) {
	if etag == "" || strings.HasPrefix(etag, "W/") {
		os.Remove(d.etagPath(a))
		return
	}
	os.WriteFile(d.etagPath(a), []byte(etag), 0o644)
}

// parseContentRange reads "bytes START-END/TOTAL"; total is -1 for "*".
func parseContentRange(v string) (start, total int64, ok bool) {
	rest, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return 0, 0, false
	}
	span, size, found := strings.Cut(rest, "/")
	first, _, found2 := strings.Cut(span, "-")
	if !found || !found2 {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	if size == "*" {
		return start, -1, true
	}
	total, err = strconv.ParseInt(size, 10, 64)
	return start, total, err == nil
}
