package guestagent

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Cmdline is what the host tells the guest on the kernel command line.
// Stock Debian kernels have no ip=, so network settings come as banger.*.
type Cmdline struct {
	Init     string       // banger.init: InitAgent, InitSystem or "" (decide)
	Hostname string       // banger.hostname
	Addr     netip.Prefix // banger.ip=<addr/prefix>
	Gateway  netip.Addr   // banger.gw
	DNS      []netip.Addr // banger.dns=<a,b>
	Work     string       // banger.work: the VM's work disk, mounted on /root in PID 1 mode
	Modules  string       // banger.modules: a read-only disk of the kernel's modules, mounted on /lib/modules
}

// banger.init values.
const (
	InitAgent  = "agent"  // the agent is init, even when the image has one
	InitSystem = "system" // exec the image's /sbin/init
)

// ParseCmdline reads the banger.* parameters of a kernel command line. It
// returns what it could parse along with an error naming the bad values.
func ParseCmdline(s string) (Cmdline, error) {
	var c Cmdline
	var errs []error
	bad := func(key, val string, err error) { errs = append(errs, fmt.Errorf("%s=%q: %w", key, val, err)) }
	for _, word := range strings.Fields(s) {
		key, val, _ := strings.Cut(word, "=")
		val = strings.Trim(val, `"`)
		var err error
		switch key {
		case "banger.init":
			if val != InitAgent && val != InitSystem {
				err = errors.New("want agent or system")
			} else {
				c.Init = val
			}
		case "banger.hostname":
			c.Hostname = val
		case "banger.work":
			c.Work = val
		case "banger.modules":
			c.Modules = val
		case "banger.ip":
			c.Addr, err = netip.ParsePrefix(val)
		case "banger.gw":
			c.Gateway, err = netip.ParseAddr(val)
		case "banger.dns":
			for _, d := range strings.Split(val, ",") {
				a, derr := netip.ParseAddr(d)
				if derr != nil {
					err = derr
					continue
				}
				c.DNS = append(c.DNS, a)
			}
		}
		if err != nil {
			bad(key, val, err)
		}
	}
	return c, errors.Join(errs...)
}
