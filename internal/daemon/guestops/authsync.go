package guestops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/agentproto"
	"banger/internal/authsync"
)

// The auth sync copies the coding agents' credential files
// (authsync.Tools) from the host home to the same place under the guest's
// /root, mode 0600: at each boot those the VM's auth_sync names, and on
// request (AuthSync). Nothing else from the host home is copied. Each
// sync is an event naming the files, never their content.

// maxAuthFile bounds what is read for one credential file.
const maxAuthFile = 1 << 20

// SyncAuth is the boot hook: it copies the VM's auth_sync tools'
// credentials present on the host. It is best effort: a VM without them
// still works, so failures are logged and recorded as events, not
// returned.
func (g *Ops) SyncAuth(ctx context.Context, vm string, cl *agentproto.Client) {
	v, err := g.vms.VM(ctx, vm)
	if err != nil {
		g.log.Warn("reading the vm's auth sync setting", "vm", vm, "err", err)
		return
	}
	if len(v.AuthSync) == 0 {
		return
	}
	res, err := g.syncAuth(ctx, vm, v.AuthSync, cl)
	if err != nil {
		g.events.Event(ctx, "warn", "vm/"+vm, err.Error())
		return
	}
	g.authEvent(ctx, res, "at boot")
}

// AuthSync copies credentials into a running VM now: the tools asked
// for, else the VM's auth_sync list, else every tool (a request to sync
// is the user saying so). It does not change what later boots copy.
func (g *Ops) AuthSync(ctx context.Context, vm string, req api.AuthSyncRequest) (api.AuthSync, error) {
	tools, err := authsync.Check(req.Tools)
	if err != nil {
		return api.AuthSync{}, errdefs.Invalid("%v", err)
	}
	if len(tools) == 0 {
		v, err := g.vms.VM(ctx, vm)
		if err != nil {
			return api.AuthSync{}, err
		}
		tools = v.AuthSync
		if len(tools) == 0 {
			tools = authsync.All()
		}
	}
	cl, err := g.vms.Agent(ctx, vm)
	if err != nil {
		return api.AuthSync{}, err
	}
	res, err := g.syncAuth(ctx, vm, tools, cl)
	if err != nil {
		return api.AuthSync{}, err
	}
	g.authEvent(ctx, res, "on request")
	return res, nil
}

// syncAuth copies the credential files of tools that the host has.
func (g *Ops) syncAuth(ctx context.Context, vm string, tools []string, cl *agentproto.Client) (api.AuthSync, error) {
	res := api.AuthSync{VM: vm, Tools: tools, Files: []string{}, Missing: []string{}}
	home, err := os.UserHomeDir()
	if err != nil {
		return res, fmt.Errorf("finding the home directory to sync credentials into vm %s from: %w", vm, err)
	}
	var files []agentproto.File
	var sent []string // the tools of files, each once
	for _, t := range authsync.Files(tools) {
		data, err := readSmall(filepath.Join(home, t.File))
		if errors.Is(err, fs.ErrNotExist) {
			res.Missing = append(res.Missing, t.File)
			continue
		}
		if err != nil {
			g.log.Warn("reading auth file for the guest", "vm", vm, "file", t.File, "err", err)
			res.Missing = append(res.Missing, t.File)
			continue
		}
		files = append(files, agentproto.File{Path: t.File, Mode: 0o600, Content: data})
		res.Files = append(res.Files, t.File)
		if !slices.Contains(sent, t.Name) {
			sent = append(sent, t.Name)
		}
	}
	if len(files) == 0 {
		return res, nil
	}
	// Recorded first: a copy that fails half way may have left some.
	if err := g.vms.RecordCredentials(ctx, vm, sent); err != nil {
		return res, fmt.Errorf("could not record the credentials (%s) vm %s is to receive, so none were copied: %w", strings.Join(sent, ", "), vm, err)
	}
	if err := cl.PutFiles(ctx, files); err != nil {
		return res, fmt.Errorf("could not copy credentials (%s) into vm %s: %w", strings.Join(res.Files, ", "), vm, err)
	}
	return res, nil
}

// authEvent records what a sync copied, by file name only.
func (g *Ops) authEvent(ctx context.Context, res api.AuthSync, when string) {
	msg := fmt.Sprintf("auth sync %s into vm %s (%s): ", when, res.VM, authsync.Describe(res.Tools))
	if len(res.Files) == 0 {
		msg += "the host has none of their credential files"
	} else {
		msg += "copied " + strings.Join(res.Files, ", ") + " (mode 0600)"
	}
	if len(res.Files) > 0 && len(res.Missing) > 0 {
		msg += "; not on the host: " + strings.Join(res.Missing, ", ")
	}
	g.events.Event(ctx, "info", "vm/"+res.VM, msg)
}

// readSmall reads a regular file of at most maxAuthFile bytes; the bound
// holds even if the file grows while it is read. It opens without
// blocking, so a FIFO in a credential file's place is refused, not waited on.
func readSmall(p string) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxAuthFile {
		return nil, fmt.Errorf("%s is not a regular file of at most %d bytes", p, maxAuthFile)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxAuthFile+1))
	if err == nil && len(data) > maxAuthFile {
		err = fmt.Errorf("%s grew past %d bytes while read", p, maxAuthFile)
	}
	return data, err
}
