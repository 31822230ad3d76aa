package network

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Resolved routes a DNS domain to a server on one link, the way
// systemd-resolved does per-link DNS: lookups of *.vm on the host go to
// the daemon's DNS on the bridge, everything else stays where it was.
type Resolved interface {
	// Available reports whether systemd-resolved runs on this host.
	Available() bool
	// Check reports whether link sends exactly the routing-only domain
	// ~domain to server and is not a default route for other lookups.
	Check(link string, server netip.Addr, domain string) (bool, error)
	Configure(link string, server netip.Addr, domain string) error
	// Revert drops banger's settings for link.
	Revert(link string) error
}

// HostResolved configures systemd-resolved through resolvectl (no Go
// binding is pinned; resolvectl speaks org.freedesktop.resolve1 for us).
// Settings last while the link exists; the boot unit re-applies them.
func HostResolved() Resolved { return resolvectl{} }

type resolvectl struct{}

func (resolvectl) Available() bool {
	if _, err := exec.LookPath("resolvectl"); err != nil {
		return false
	}
	_, err := os.Stat("/run/systemd/resolve/io.systemd.Resolve")
	return err == nil
}

func (r resolvectl) Check(link string, server netip.Addr, domain string) (bool, error) {
	dnsOut, err := r.run("dns", link)
	if err != nil {
		return false, err
	}
	domOut, err := r.run("domain", link)
	if err != nil {
		return false, err
	}
	routeOut, err := r.run("default-route", link)
	if err != nil {
		return false, err
	}
	return linkValues(dnsOut) == server.String() && linkValues(domOut) == "~"+domain && linkValues(routeOut) == "no", nil
}

func (r resolvectl) Configure(link string, server netip.Addr, domain string) error {
	for _, args := range [][]string{
		{"dns", link, server.String()},
		{"domain", link, "~" + domain},
		{"default-route", link, "false"},
	} {
		if _, err := r.run(args...); err != nil {
			return err
		}
	}
	return nil
}

func (r resolvectl) Revert(link string) error {
	_, err := r.run("revert", link)
	return err
}

func (resolvectl) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "resolvectl", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("running resolvectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// linkValues extracts the values from resolvectl's "Link 5 (banger0): a b".
func linkValues(out string) string {
	_, v, _ := strings.Cut(strings.TrimSpace(out), ": ")
	return strings.TrimSpace(v)
}
