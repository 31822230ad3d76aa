package vms

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"banger/api"
	"banger/internal/agentproto"
	"banger/internal/disk"
	"banger/internal/ext4"
	"banger/internal/progress"
	"banger/internal/vmm"
)

// Where banger puts things inside every guest. The guest agent reads the
// same kernel arguments (see docs/agent-protocol.md).
const (
	GuestAgentPath = agentproto.GuestBinaryPath
	guestUnitPath  = agentproto.GuestUnitPath
	guestUnitWants = "/etc/systemd/system/multi-user.target.wants/banger-agent.service"
	guestRootMount = "/etc/systemd/system/root.mount"
	guestRootWants = "/etc/systemd/system/local-fs.target.wants/root.mount"

	RootfsFile = "rootfs.ext4"
	WorkFile   = "work.ext4"
	ConsoleLog = vmm.ConsoleLogFile
)

// rootMount mounts the work disk on /root under systemd (the agent does
// it itself when it is PID 1).
const rootMount = `[Unit]
Description=banger work disk
Before=local-fs.target

[Mount]
What=/dev/vdb
Where=/root
Type=ext4
Options=defaults

[Install]
WantedBy=local-fs.target
`

// initMode says how the guest's init is arranged.
type initMode struct {
	systemd bool // the image boots systemd; the agent is a unit
}

// provisionDisks makes the VM's private disks in dir: a clone of the
// image's rootfs with this banger's agent written in, and the work disk.
func (m *Manager) provisionDisks(ctx context.Context, im api.Image, dir string, workBytes int64, authorizedKey string, p progress.Func) (initMode, error) {
	root := filepath.Join(dir, RootfsFile)
	total, err := disk.DataSize(im.Rootfs)
	if err != nil {
		return initMode{}, fmt.Errorf("sizing image rootfs: %w", err)
	}
	c := progress.NewCounter(p, "disk", "rootfs", total)
	if _, err := disk.Copy(ctx, im.Rootfs, root, disk.WithProgress(c)); err != nil {
		return initMode{}, fmt.Errorf("cloning rootfs: %w", err)
	}
	c.Done()
	mode, err := m.injectAgent(ctx, root, im)
	if err != nil {
		return initMode{}, err
	}
	p.Step("disk", "preparing the work disk")
	if err := m.makeWorkDisk(ctx, im, filepath.Join(dir, WorkFile), workBytes, authorizedKey); err != nil {
		return initMode{}, err
	}
	return mode, nil
}

// injectAgent writes the guest agent (and, for systemd images, its unit
// and the /root mount) into the rootfs clone, so every guest runs the
// agent of the banger that starts it.
func (m *Manager) injectAgent(ctx context.Context, root string, im api.Image) (initMode, error) {
	bin, err := os.ReadFile(m.agentBinary)
	if err != nil {
		return initMode{}, fmt.Errorf("reading the guest agent %s: %w (reinstall banger with 'make install')", m.agentBinary, err)
	}
	files := []ext4.File{{Path: GuestAgentPath, Mode: 0o755, Data: bin}}
	mode := initMode{}
	if target, err := ext4.Resolve(ctx, root, "/sbin/init"); err == nil && strings.Contains(target, "systemd") {
		mode.systemd = true
		files = append(files,
			ext4.File{Path: guestUnitPath, Mode: 0o644, Data: []byte(agentproto.GuestUnit)},
			ext4.File{Path: guestUnitWants, Mode: fs.ModeSymlink | 0o777, Link: guestUnitPath},
			ext4.File{Path: guestRootMount, Mode: 0o644, Data: []byte(rootMount)},
			ext4.File{Path: guestRootWants, Mode: fs.ModeSymlink | 0o777, Link: guestRootMount},
		)
		if im.Modules != "" {
			name, body := modulesMountUnit(ctx, root)
			unit := "/etc/systemd/system/" + name
			files = append(files,
				ext4.File{Path: unit, Mode: 0o644, Data: []byte(body)},
				ext4.File{Path: "/etc/systemd/system/local-fs.target.wants/" + name, Mode: fs.ModeSymlink | 0o777, Link: unit},
			)
		}
	}
	if err := ext4.Inject(ctx, root, files); err != nil {
		return initMode{}, fmt.Errorf("injecting the guest agent: %w", err)
	}
	return mode, nil
}

// makeWorkDisk creates the disk mounted at /root: a copy of the image's
// work-seed grown to size, or an empty filesystem. The host's banger key
// is authorised for root on it.
func (m *Manager) makeWorkDisk(ctx context.Context, im api.Image, path string, size int64, authorizedKey string) error {
	if im.WorkSeed != "" {
		if _, err := disk.Copy(ctx, im.WorkSeed, path); err != nil {
			return fmt.Errorf("copying work-seed: %w", err)
		}
		if err := ext4.Grow(ctx, path, size); err != nil {
			return fmt.Errorf("growing work disk: %w", err)
		}
	} else if err := ext4.Create(ctx, path, size, "banger-work"); err != nil {
		return err
	}
	files := []ext4.File{
		{Path: "/.ssh", Mode: fs.ModeDir | 0o700},
		{Path: "/.ssh/authorized_keys", Mode: 0o600, Data: []byte(authorizedKey)},
	}
	if err := ext4.Inject(ctx, path, files); err != nil {
		return fmt.Errorf("authorising the ssh key on the work disk: %w", err)
	}
	return nil
}
