package guestagent

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mdlayher/vsock"
	"golang.org/x/sys/unix"
)

// FindSerialPort returns the device of the virtio-serial port called name,
// e.g. /dev/vport0p1, from sysDir/class/virtio-ports/*/name.
func FindSerialPort(sysDir, devDir, name string) (string, error) {
	files, _ := filepath.Glob(filepath.Join(sysDir, "class", "virtio-ports", "*", "name"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil && strings.TrimSpace(string(b)) == name {
			return filepath.Join(devDir, filepath.Base(filepath.Dir(f))), nil
		}
	}
	return "", fmt.Errorf("no virtio-serial port named %s", name)
}

// openSerial opens a virtio-serial port for ServePort. The port is
// pollable, and reads return EOF while no host is connected.
func openSerial(path string) func() (io.ReadWriteCloser, error) {
	return func() (io.ReadWriteCloser, error) {
		f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", path, err)
		}
		return f, nil
	}
}

// serveSerial finds the port (it may appear late, once virtio_console is
// loaded) and serves it until ctx is done.
func (s *Server) serveSerial(ctx context.Context, name string) error {
	var path string
	err := retryUntil(ctx, func() error {
		var err error
		path, err = FindSerialPort("/sys", "/dev", name)
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("serving virtio-serial port", "port", name, "device", path)
	return s.ServePort(ctx, openSerial(path))
}

// serveVsock listens on AF_VSOCK port once the device exists.
func (s *Server) serveVsock(ctx context.Context, port uint32) error {
	var ln net.Listener
	err := retryUntil(ctx, func() error {
		var err error
		ln, err = vsock.Listen(port, nil)
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("serving vsock", "port", port)
	return s.Serve(ctx, ln)
}

// retryUntil calls fn with backoff up to 10s between tries until it
// succeeds or ctx is done.
func retryUntil(ctx context.Context, fn func() error) error {
	wait := 100 * time.Millisecond
	for {
		err := fn()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(wait*2, 10*time.Second)
	}
}
