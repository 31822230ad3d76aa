package mcpserver

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"path"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"banger/api/errdefs"
)

// File bounds: what file_read returns by default and at most per call,
// and the largest file_write.
const (
	defaultReadBytes = 256 << 10
	maxReadBytes     = 1 << 20
	maxWriteBytes    = 8 << 20
)

type readIn struct {
	VM       string `json:"vm" jsonschema:"name of the VM"`
	Path     string `json:"path" jsonschema:"absolute guest path of a regular file"`
	Offset   int64  `json:"offset,omitempty" jsonschema:"byte offset to start reading at (to page through a large file)"`
	MaxBytes int    `json:"max_bytes,omitempty" jsonschema:"bytes to return; default 262144, at most 1048576"`
	Encoding string `json:"encoding,omitempty" jsonschema:"text (default: UTF-8, invalid bytes shown as U+FFFD) or base64 (exact bytes)"`
}

type readOut struct {
	Path      string `json:"path"`
	Size      int64  `json:"size" jsonschema:"the file's size in bytes"`
	Offset    int64  `json:"offset"`
	Content   string `json:"content"`
	Encoding  string `json:"encoding"`
	Truncated bool   `json:"truncated,omitempty" jsonschema:"the file goes on past what was returned; read on with offset"`
	Binary    bool   `json:"binary,omitempty" jsonschema:"the returned bytes are not valid UTF-8; read with encoding base64 to get them exactly"`
}

type writeIn struct {
	VM       string `json:"vm" jsonschema:"name of the VM"`
	Path     string `json:"path" jsonschema:"absolute guest path; missing parent directories are created, an existing file is replaced"`
	Content  string `json:"content" jsonschema:"the file's content"`
	Encoding string `json:"encoding,omitempty" jsonschema:"text (default) or base64 (content is base64 of the bytes)"`
	Mode     string `json:"mode,omitempty" jsonschema:"octal permissions, e.g. 0755; default 0644"`
}

type writeOut struct {
	Path  string `json:"path"`
	Bytes int64  `json:"bytes"`
}

func (s *Server) addFileTools() {
	mcp.AddTool(s.mcp, &mcp.Tool{
		Name:        "file_read",
		Description: "Read a file from a VM (through the guest agent). Large files come back in pages: see truncated and offset.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
	}, s.fileRead)
	mcp.AddTool(s.mcp, &mcp.Tool{
		Name:        "file_write",
		Description: "Write a file in a VM (through the guest agent), owned by root, replacing any file at that path.",
	}, s.fileWrite)
}

func (s *Server) fileRead(ctx context.Context, _ *mcp.CallToolRequest, in readIn) (*mcp.CallToolResult, readOut, error) {
	if err := guestPath(in.Path); err != nil {
		return nil, readOut{}, err
	}
	enc, err := encoding(in.Encoding)
	if err != nil {
		return nil, readOut{}, err
	}
	if in.Offset < 0 {
		return nil, readOut{}, errdefs.Invalid("offset is %d; give a byte offset of 0 or more", in.Offset)
	}
	limit := defaultReadBytes
	if in.MaxBytes > 0 {
		limit = min(in.MaxBytes, maxReadBytes)
	}
	if _, _, err := s.vmForUse(ctx, in.VM, false); err != nil {
		return nil, readOut{}, err
	}
	st, err := s.cl.CopyOut(ctx, in.VM, in.Path)
	if err != nil {
		return nil, readOut{}, err
	}
	defer st.Close() // the rest of a large file is not read
	tr := tar.NewReader(st)
	hdr, err := tr.Next()
	if err != nil {
		if _, ferr := st.Finish(); ferr != nil {
			return nil, readOut{}, ferr
		}
		return nil, readOut{}, errdefs.Invalid("reading %s in vm %s: the guest sent no file", in.Path, in.VM)
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
	case tar.TypeDir:
		return nil, readOut{}, errdefs.Invalid("%s is a directory; list it with vm_exec (ls -la %s)", in.Path, in.Path)
	case tar.TypeSymlink:
		return nil, readOut{}, errdefs.Invalid("%s is a symbolic link to %q; read the target's absolute path", in.Path, cleanText([]byte(hdr.Linkname)))
	default:
		return nil, readOut{}, errdefs.Invalid("%s is not a regular file", in.Path)
	}
	if _, err := io.CopyN(io.Discard, tr, in.Offset); err != nil && !errors.Is(err, io.EOF) {
		return nil, readOut{}, err
	}
	data, err := io.ReadAll(io.LimitReader(tr, int64(limit)))
	if err != nil {
		return nil, readOut{}, err
	}
	out := readOut{Path: in.Path, Size: hdr.Size, Offset: min(in.Offset, hdr.Size), Encoding: enc}
	out.Truncated = out.Offset+int64(len(data)) < hdr.Size
	if !out.Truncated {
		if _, err := st.Finish(); err != nil { // the guest's error when it stopped early
			return nil, readOut{}, err
		}
	}
	if enc == "base64" {
		out.Content = base64.StdEncoding.EncodeToString(data)
	} else {
		out.Binary = !utf8.Valid(data) || bytes.IndexByte(data, 0) >= 0
		out.Content = cleanText(data)
	}
	return nil, out, nil
}

func (s *Server) fileWrite(ctx context.Context, _ *mcp.CallToolRequest, in writeIn) (*mcp.CallToolResult, writeOut, error) {
	if err := guestPath(in.Path); err != nil {
		return nil, writeOut{}, err
	}
	if in.Path == "/" || path.Clean(in.Path) == "/" {
		return nil, writeOut{}, errdefs.Invalid("path / is a directory; give a file path")
	}
	enc, err := encoding(in.Encoding)
	if err != nil {
		return nil, writeOut{}, err
	}
	data := []byte(in.Content)
	if enc == "base64" {
		if data, err = base64.StdEncoding.DecodeString(in.Content); err != nil {
			return nil, writeOut{}, errdefs.Invalid("content is not valid base64 (%v); encode the bytes with standard base64, or use encoding text", err)
		}
	}
	if len(data) > maxWriteBytes {
		return nil, writeOut{}, errdefs.Invalid("content is %d bytes, more than %d; split the file and join the parts with vm_exec (cat a b > c)", len(data), maxWriteBytes)
	}
	mode := int64(0o644)
	if in.Mode != "" {
		if mode, err = strconv.ParseInt(in.Mode, 8, 32); err != nil || mode < 0 || mode > 0o7777 {
			return nil, writeOut{}, errdefs.Invalid("mode %q is not octal permissions; give e.g. 0644 or 0755", in.Mode)
		}
	}
	if _, _, err := s.vmForUse(ctx, in.VM, false); err != nil {
		return nil, writeOut{}, err
	}
	clean := path.Clean(in.Path)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: path.Base(clean), Mode: mode, Size: int64(len(data)), ModTime: time.Now()})
	tw.Write(data)
	if err := tw.Close(); err != nil {
		return nil, writeOut{}, err
	}
	res, err := s.cl.CopyIn(ctx, in.VM, path.Dir(clean), &buf)
	if err != nil {
		return nil, writeOut{}, err
	}
	return nil, writeOut{Path: clean, Bytes: res.Bytes}, nil
}

func guestPath(p string) error {
	if !path.IsAbs(p) {
		return errdefs.Invalid("path %q is not absolute; give a full guest path such as /root/notes.txt", p)
	}
	if len(p) > 4096 {
		return errdefs.Invalid("path is %d bytes long, more than 4096", len(p))
	}
	return nil
}

func encoding(e string) (string, error) {
	switch e {
	case "", "text", "utf-8":
		return "text", nil
	case "base64":
		return "base64", nil
	}
	return "", errdefs.Invalid("encoding %q is not text or base64", e)
}
