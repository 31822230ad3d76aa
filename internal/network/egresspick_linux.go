package network

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// CanAdminNetwork reports whether this process may change nftables: it
// holds CAP_NET_ADMIN in its effective set (root usually does).
func CanAdminNetwork() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return os.Geteuid() == 0
	}
	return data[0].Effective&(1<<unix.CAP_NET_ADMIN) != 0
}

// DaemonEgress is how a daemon running as uid writes its egress tables:
// itself when it may change nftables, else through its user's egress
// helper (socket in dir, EgressHelperDir) when one answers. The error
// says why neither works and what fixes it.
func DaemonEgress(dir string, uid int) (Egress, error) {
	if CanAdminNetwork() {
		return HostEgress(), nil
	}
	ns, err := currentNamespace()
	if err != nil {
		return nil, err
	}
	socket := EgressHelperSocket(dir, uid, ns)
	c := HelperEgress(socket)
	if err := c.Ping(); err != nil {
		c.Close()
		return nil, fmt.Errorf("it runs without CAP_NET_ADMIN and no egress helper answers at %s (%w); run %s, which installs and starts the helper", socket, err, setupQuoted)
	}
	return c, nil
}
