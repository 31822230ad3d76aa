package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"banger/api/errdefs"
	"banger/client"
)

func (a *app) daemonCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Start, stop and inspect bangerd, the local daemon",
	}
	cmd.AddCommand(a.daemonStartCmd(), a.daemonStopCmd(), a.daemonStatusCmd(), a.daemonLogsCmd())
	return cmd
}

func (a *app) daemonStartCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "start",
		Short: "Start bangerd in the background if it is not running",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl := client.New(a.layout.SocketPath)
			if st, err := cl.Status(cmd.Context()); err == nil {
				fmt.Fprintf(a.stdout, "bangerd is already running (pid %d)\n", st.PID)
				return nil
			}
			if err := a.startDaemon(cmd.Context(), cl); err != nil {
				return err
			}
			st, err := cl.Status(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "bangerd started (pid %d, socket %s)\n", st.PID, st.Socket)
			return nil
		},
	}
}

func (a *app) daemonStopCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "stop",
		Short: "Stop bangerd (running VMs keep running and are re-adopted at next start)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl := client.New(a.layout.SocketPath)
			st, err := cl.Status(cmd.Context())
			if client.IsNotRunning(err) {
				fmt.Fprintln(a.stdout, "bangerd is not running")
				return nil
			}
			if err != nil {
				return err
			}
			if err := cl.Shutdown(cmd.Context()); err != nil {
				return err
			}
			if err := waitExit(cmd.Context(), st.PID, 30*time.Second); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "bangerd stopped (pid %d)\n", st.PID)
			return nil
		},
	}
}

func (a *app) daemonStatusCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show whether bangerd runs, its pid, version, socket, web URL and counts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := client.New(a.layout.SocketPath).Status(cmd.Context())
			if client.IsNotRunning(err) {
				if asJSON {
					printJSON(a.stdout, map[string]any{"running": false, "socket": a.layout.SocketPath})
				} else {
					fmt.Fprintf(a.stdout, "bangerd is not running (socket %s)\n", a.layout.SocketPath)
				}
				return exitError{3}
			}
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, st)
			}
			web := st.WebURL
			switch {
			case web == "":
				web = "disabled"
			case !st.WebExposed:
				web += "  (log a browser in with the URL 'banger web' prints)"
			case st.WebExposed:
				web += "  EXPOSED: reachable from the network, anyone who reaches it can start, stop and delete your VMs (set web_listen_addr = \"127.0.0.1:7777\")"
			}
			return table(a.stdout, [][]string{
				{"running:", fmt.Sprintf("yes (pid %d, up %s)", st.PID, time.Since(st.StartedAt).Round(time.Second))},
				{"version:", st.Version + " (API " + st.APIVersion + ")"},
				{"socket:", st.Socket},
				{"web UI:", web},
				{"state:", st.StateDir},
				{"log:", st.LogFile},
				{"images:", fmt.Sprint(st.Images)},
				{"kernels:", fmt.Sprint(st.Kernels)},
				{"vms:", fmt.Sprintf("%d (%d running)", st.VMs, st.VMsRunning)},
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) daemonLogsCmd() *cobra.Command {
	var follow bool
	var lines int
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Print bangerd's log (works when the daemon is down)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return tailFile(cmd.Context(), a.stdout, a.layout.LogFile, lines, follow)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().IntVarP(&lines, "lines", "n", 100, "number of lines from the end to print (0 for all)")
	return cmd
}

// startDaemon launches bangerd detached (own session, output to its log)
// and waits until it answers.
func (a *app) startDaemon(ctx context.Context, cl *client.Client) error {
	bin, err := findBangerd()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(a.layout.LogFile), 0o700); err != nil {
		return err
	}
	logf, err := os.OpenFile(a.layout.LogFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("opening %s: %w", a.layout.LogFile, err)
	}
	defer logf.Close()
	cmd := exec.Command(bin)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("bangerd exited during start (%v): %s", err, lastLine(a.layout.LogFile))
		case <-deadline.C:
			return errdefs.Unavailable("bangerd did not answer on %s within 15s; see 'banger daemon logs'", a.layout.SocketPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if _, err := cl.Status(ctx); err == nil {
				return nil
			}
		}
	}
}

// findBangerd looks for the daemon binary: $BANGER_BANGERD, next to this
// executable, then PATH.
func findBangerd() (string, error) {
	if p := os.Getenv("BANGER_BANGERD"); p != "" {
		return p, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "bangerd")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	p, err := exec.LookPath("bangerd")
	if err != nil {
		return "", errdefs.Unavailable("bangerd not found next to banger or in PATH; run 'make install' or set BANGER_BANGERD")
	}
	return p, nil
}

func waitExit(ctx context.Context, pid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("bangerd (pid %d) still running after %s; see 'banger daemon logs'", pid, timeout)
}

func lastLine(path string) string {
	var last string
	f, err := os.Open(path)
	if err != nil {
		return "no log"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if sc.Text() != "" {
			last = sc.Text()
		}
	}
	return last
}

// tailFile prints the last n lines of path, then follows it if asked.
func tailFile(ctx context.Context, w io.Writer, path string, n int, follow bool) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return errdefs.NotFound("no daemon log at %s yet; start the daemon with 'banger daemon start'", path)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	var ring []string
	rd := bufio.NewReader(f)
	for {
		line, err := rd.ReadString('\n')
		if line != "" && err == nil {
			ring = append(ring, line)
			if n > 0 && len(ring) > n {
				ring = ring[1:]
			}
		}
		if err != nil {
			for _, l := range ring {
				io.WriteString(w, l)
			}
			if !follow {
				io.WriteString(w, line)
				return nil
			}
			return followLines(ctx, w, rd, line)
		}
	}
}

func followLines(ctx context.Context, w io.Writer, rd *bufio.Reader, partial string) error {
	for {
		line, err := rd.ReadString('\n')
		partial += line
		if err == nil {
			io.WriteString(w, partial)
			partial = ""
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(250 * time.Millisecond):
		}
	}
}
