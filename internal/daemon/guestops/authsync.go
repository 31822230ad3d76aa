package guestops

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"banger/internal/agentproto"
)

// AuthFiles are the coding agents' credentials that banger copies from
// the host home to the same place under the guest's /root when a VM
// starts. Nothing else from the host home is copied.
var AuthFiles = []string{
	".local/share/opencode/auth.json",
	".claude/.credentials.json",
	".pi/agent/auth.json",
}

// maxAuthFile bounds what is read for one credential file.
const maxAuthFile = 1 << 20

// SyncAuth copies the AuthFiles present on the host into the guest (mode
// 0600). It is best effort: a VM without them still works, so failures
// are logged and recorded as events, not returned.
func (g *Ops) SyncAuth(ctx context.Context, vm string, cl *agentproto.Client) {
	home, err := os.UserHomeDir()
	if err != nil {
		return
	}
	var files []agentproto.File
	for _, rel := range AuthFiles {
		data, err := readSmall(filepath.Join(home, rel))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			g.log.Warn("reading auth file for the guest", "vm", vm, "file", rel, "err", err)
			continue
		}
		files = append(files, agentproto.File{Path: rel, Mode: 0o600, Content: data})
	}
	if len(files) == 0 {
		return
	}
	if err := cl.PutFiles(ctx, files); err != nil {
		g.events.Event(ctx, "warn", "vm/"+vm, fmt.Sprintf("could not copy auth files into vm %s: %v", vm, err))
		return
	}
	g.log.Info("auth files copied into the guest", "vm", vm, "files", len(files))
}

func readSmall(p string) ([]byte, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxAuthFile {
		return nil, fmt.Errorf("%s is not a regular file of at most %d bytes", p, maxAuthFile)
	}
	return os.ReadFile(p)
}
