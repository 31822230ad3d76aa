package firecracker

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// Files in a chroot belong to the jail's user, so a compromised
// Firecracker can put anything where bangerd expects a file: a symbolic
// link to a host file, a hard link to a file it could not otherwise
// change, a FIFO. bangerd, which may run as root, must never follow such
// a name when it changes an owner or a mode, syncs or reads. It checks
// the name with Lstat, opens it with O_NOFOLLOW (O_NONBLOCK: a FIFO
// swapped in between must not hang it), checks the open file is the
// regular file it checked, and then works on the descriptor only.

// fileCheck says what a file in a chroot must be.
type fileCheck struct {
	// what names the file in errors ("the saved memory").
	what string
	// single refuses a file with more than one name: a file Firecracker
	// just created has one, and a second name is a link to another file.
	single bool
	// fromVMM: Firecracker wrote the file, so anything else is its doing.
	fromVMM bool
}

// openInJail opens path, which a jailed Firecracker could have changed,
// with flag, refusing anything but the regular file c describes.
func openInJail(path string, flag int, c fileCheck) (*os.File, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if err := c.check(path, fi); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errIsLoop(err) {
			return nil, c.refuse(path, "a symbolic link")
		}
		return nil, err
	}
	ofi, err := f.Stat()
	if err == nil {
		err = c.check(path, ofi)
	}
	if err == nil && !os.SameFile(fi, ofi) {
		err = c.refuse(path, "a file that was replaced while it was opened")
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// check refuses fi unless it is the regular file c describes.
func (c fileCheck) check(path string, fi fs.FileInfo) error {
	switch m := fi.Mode(); {
	case m&fs.ModeSymlink != 0:
		return c.refuse(path, "a symbolic link")
	case m.IsDir():
		return c.refuse(path, "a directory")
	case !m.IsRegular():
		return c.refuse(path, "a special file ("+m.Type().String()+")")
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && c.single && st.Nlink != 1 {
		return c.refuse(path, fmt.Sprintf("a file with %d names (a hard link to another file)", st.Nlink))
	}
	return nil
}

func (c fileCheck) refuse(path, is string) error {
	if c.fromVMM {
		return fmt.Errorf("refusing %s %s: it is %s, not a regular file Firecracker wrote; a compromised or broken Firecracker left it there", c.what, path, is)
	}
	return fmt.Errorf("refusing %s %s: it is %s, not a regular file; give the file itself", c.what, path, is)
}

func errIsLoop(err error) bool {
	pe, ok := err.(*fs.PathError)
	return ok && pe.Err == syscall.ELOOP
}

// blocksOf is what the file takes on disk.
func blocksOf(fi fs.FileInfo) int64 {
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		return sys.Blocks * 512
	}
	return fi.Size()
}
