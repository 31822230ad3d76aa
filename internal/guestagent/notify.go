package guestagent

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// notifyReady tells systemd (Type=notify) that the agent is serving, so
// units ordered after it (sshd) start once keys and config are in place.
func notifyReady() error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	if strings.HasPrefix(addr, "@") {
		addr = "\x00" + addr[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("dialing systemd notify socket: %w", err)
	}
	defer c.Close()
	_, err = c.Write([]byte("READY=1"))
	return err
}
