package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"banger/api"
	"banger/api/errdefs"
)

func (a *app) vmForwardCmd() *cobra.Command {
	var req api.ForwardRequest
	var stop, asJSON bool
	cmd := &cobra.Command{
		Use:   "forward NAME [HOST_PORT:]GUEST_PORT...",
		Short: "Forward ports on 127.0.0.1 to ports in a VM, through its agent",
		Long: `Forward TCP ports on the host's 127.0.0.1 to ports in a VM. Connections go
through the guest agent, so they need neither the bridge's routing nor the
*.vm names: a service listening on the guest's loopback is reachable too.

Without HOST_PORT (or with 0) the host port is the guest's; when it is taken
the command says so, or with --any-port picks a free one. Only 127.0.0.1 is
bound: other machines never reach the VM through a forward.

The forward lasts until Ctrl-C. With --detach the daemon keeps it until
'banger vm forward --stop', until the VM stops or is deleted, or until the
daemon stops. 'banger vm ports NAME' and 'banger vm show NAME' list them.`,
		Example: `  banger vm forward dev 8080              # 127.0.0.1:8080 -> dev:8080 until Ctrl-C
  banger vm forward dev 18080:8080 3000   # two ports
  banger vm forward dev 4096 --detach     # left to the daemon
  banger vm forward dev 8080 --any-port   # a free host port if 8080 is taken
  banger vm forward --stop dev 4096       # stop one (all of dev's without a port)`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return errdefs.Invalid("missing VM name; usage: %s", cmd.UseLine())
			}
			if len(args) == 1 && !stop {
				return errdefs.Invalid("no port to forward; name one, e.g. 'banger vm forward %s 8080'", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			vm := args[0]
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			if stop {
				ports, err := parseHostPorts(args[1:])
				if err != nil {
					return err
				}
				fs, err := cl.StopForwards(cmd.Context(), vm, ports)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(a.stdout, fs)
				}
				for _, f := range fs {
					fmt.Fprintf(a.stdout, "stopped forwarding %s to %s:%d\n", f.HostAddr, vm, f.GuestPort)
				}
				if len(fs) == 0 {
					fmt.Fprintf(a.stdout, "vm %s has no forwards\n", vm)
				}
				return nil
			}
			if req.Ports, err = parsePortSpecs(args[1:]); err != nil {
				return err
			}
			return a.forward(cmd.Context(), vm, req, asJSON)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&req.Detach, "detach", "d", false, "leave the forwards to the daemon and return")
	f.BoolVar(&req.AnyPort, "any-port", false, "pick a free host port when the asked one is taken")
	f.BoolVar(&stop, "stop", false, "stop the VM's forwards on the named host ports (all without ports)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) forward(ctx context.Context, vm string, req api.ForwardRequest, asJSON bool) error {
	cl, err := a.client(ctx)
	if err != nil {
		return err
	}
	if req.Detach {
		fs, err := cl.Forward(ctx, vm, req, nil)
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(a.stdout, fs)
		}
		for _, f := range fs {
			fmt.Fprintf(a.stdout, "forwarding %s to %s:%d (stop with 'banger vm forward --stop %s %d')\n", f.HostAddr, vm, f.GuestPort, vm, f.HostPort)
		}
		return nil
	}
	fs, err := cl.Forward(ctx, vm, req, func(ev api.Event) {
		if ev.Step == "forward" && !asJSON {
			fmt.Fprintln(a.stdout, safeText(ev.Message))
		}
	})
	if ctx.Err() != nil { // Ctrl-C: the normal end
		if !asJSON {
			fmt.Fprintln(a.stderr, "stopped forwarding")
		}
		return nil
	}
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(a.stdout, fs)
	}
	return nil
}

// parsePortSpecs reads [HOST_PORT:]GUEST_PORT arguments.
func parsePortSpecs(args []string) ([]api.PortSpec, error) {
	var out []api.PortSpec
	for _, arg := range args {
		host, guest, hasHost := strings.Cut(arg, ":")
		if !hasHost {
			host, guest = "0", host
		}
		hp, err1 := strconv.Atoi(host)
		gp, err2 := strconv.Atoi(guest)
		if err1 != nil || err2 != nil || hp < 0 || hp > 65535 || gp < 1 || gp > 65535 {
			return nil, errdefs.Invalid("port %q is not [HOST_PORT:]GUEST_PORT with ports 1-65535, e.g. 8080 or 18080:8080", arg)
		}
		out = append(out, api.PortSpec{HostPort: hp, GuestPort: gp})
	}
	return out, nil
}

func parseHostPorts(args []string) ([]int, error) {
	var out []int
	for _, arg := range args {
		p, err := strconv.Atoi(arg)
		if err != nil || p < 1 || p > 65535 {
			return nil, errdefs.Invalid("host port %q is not a port number (1-65535)", arg)
		}
		out = append(out, p)
	}
	return out, nil
}

// forwardRows are the lines of vm show about forwards.
func forwardRows(fs []api.Forward) [][]string {
	var rows [][]string
	label := "forwards:"
	for _, f := range fs {
		line := fmt.Sprintf("%s -> port %d", f.HostAddr, f.GuestPort)
		if !f.Detached {
			line += " (until its command ends)"
		}
		if f.LastError != "" {
			line += "; last error: " + safeText(f.LastError)
		}
		rows = append(rows, []string{label, line})
		label = ""
	}
	return rows
}

func forwardedFrom(hostPorts []int) string {
	var out []string
	for _, p := range hostPorts {
		out = append(out, "127.0.0.1:"+strconv.Itoa(p))
	}
	return orDash(strings.Join(out, ", "))
}

// listed reports whether ports shows f on a listening port.
func listed(ports []api.Port, f api.Forward) bool {
	for _, p := range ports {
		for _, h := range p.Forwarded {
			if h == f.HostPort {
				return true
			}
		}
	}
	return false
}
