package vmmfake

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// A saved state also keeps a copy of its guest's files (guestCopy),
// taken at the save, as a real VMM's memory file holds the guest as it
// was. A state whose guest ran on (its VM resumed) or was restored
// already can then still be restored, as a template is, many times: each
// restore is a new guest started from that copy. Processes are not
// copied (a test's session processes cannot be): the copy leaves out the
// guest's sessions.
const guestCopy = "guest"

// copyGuest copies the guest files under root into dst, but its sessions.
func copyGuest(root, dst string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && path == root {
				return os.MkdirAll(dst, 0o700)
			}
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if rel == filepath.Join("state", "sessions") {
			return filepath.SkipDir
		}
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o700)
		case d.Type().IsRegular():
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(to, b, 0o600)
		}
		return nil // sockets and the like are the running guest's
	})
}

// cloneGuest makes the guest of the new VMM pid a copy of the state's.
func (d *Driver) cloneGuest(stateDir string, pid int) error {
	src := filepath.Join(stateDir, guestCopy)
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("the state's guest memory is not this VMM's (it ran on, or the VMM restarted): %w", err)
	}
	return copyGuest(src, d.rootOf(pid))
}
