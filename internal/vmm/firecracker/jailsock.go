package firecracker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// The API and vsock sockets are in the chroot too, where the jail could
// replace them with a link to another unix socket on the host (another
// VM's API, whose memory a snapshot request would then save where this
// VM's state goes). connect(2) follows links, so a socket is opened
// O_PATH|O_NOFOLLOW, checked to be a socket, and connected to through
// /proc/self/fd, which names that very inode.

// openSocket opens the unix socket at path without following a link;
// what names it for errors. The caller closes the descriptor.
func openSocket(path, what string) (int, error) {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		unix.Close(fd)
		is := "not a socket"
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			is = "a symbolic link"
		}
		return -1, fmt.Errorf("refusing %s %s: it is %s, not the socket Firecracker made; a compromised or broken Firecracker left it there", what, path, is)
	}
	return fd, nil
}

// procFD is the name of descriptor fd of this process.
func procFD(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// dialSocket connects to the unix socket at path as openSocket finds it.
func dialSocket(ctx context.Context, path, what string) (net.Conn, error) {
	fd, err := openSocket(path, what)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", procFD(fd))
	if err != nil {
		return nil, fmt.Errorf("dialing %s %s: %w", what, path, err)
	}
	return c, nil
}

// waitSocket is openSocket, retried while the socket does not exist yet
// (a VMM still binding it) until ctx is done.
func waitSocket(ctx context.Context, path, what string) (int, error) {
	wait := 5 * time.Millisecond
	for {
		fd, err := openSocket(path, what)
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			return fd, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return -1, fmt.Errorf("waiting for %s %s: %w (last error: %v)", what, path, ctx.Err(), err)
		case <-t.C:
		}
		wait = min(wait*2, 100*time.Millisecond)
	}
}
