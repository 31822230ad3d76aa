package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"banger/api"
	"banger/client"
	"banger/internal/bytesize"
)

func (a *app) vmStatsCmd() *cobra.Command {
	var asJSON, watch bool
	var history int
	cmd := &cobra.Command{
		Use:   "stats NAME",
		Short: "Show a VM's CPU, memory, disk, network and VMM usage",
		Long: `Show the newest sample of a VM's usage: the guest's CPU, memory, disks,
network and load as its agent reports them, SSH connections and sessions,
the VMM process's CPU and memory on the host, the VMM's own counters and
where the VM stands with auto-stop. The daemon samples running VMs every
stats_poll_interval and keeps the last hour in memory.

--history N prints the N samples before the newest as a table; --watch keeps
printing a row per new sample until interrupted. With --json, plain output is
the whole record and --watch prints one JSON sample per line.`,
		Example: `  banger vm stats dev
  banger vm stats dev --watch
  banger vm stats dev --history 30 --json`,
		Args: exactArgs(1, "a VM name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			if watch {
				return a.watchStats(cmd.Context(), cl, args[0], history, asJSON)
			}
			st, err := cl.VMStats(cmd.Context(), args[0], history)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, st)
			}
			if history > 0 {
				return table(a.stdout, append([][]string{sampleHeader}, sampleRows(st.History)...))
			}
			return table(a.stdout, statsRows(st, time.Now()))
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.BoolVarP(&watch, "watch", "w", false, "print a row per new sample until interrupted")
	f.IntVar(&history, "history", 0, "also print up to this many earlier samples")
	return cmd
}

// watchStats prints samples as they come: the daemon is asked twice per
// interval, and a sample is printed once.
func (a *app) watchStats(ctx context.Context, cl *client.Client, name string, history int, asJSON bool) error {
	enc := json.NewEncoder(a.stdout)
	var last time.Time
	first := true
	for {
		st, err := cl.VMStats(ctx, name, max(history, 0)+1)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		var fresh []api.StatsSample
		for _, s := range st.History {
			if s.Time.After(last) {
				fresh = append(fresh, s)
				last = s.Time
			}
		}
		switch {
		case asJSON:
			for _, s := range fresh {
				enc.Encode(s)
			}
		case first || len(fresh) > 0:
			rows := sampleRows(fresh)
			if first {
				rows = append([][]string{sampleHeader}, rows...)
			}
			writeRows(a.stdout, rows)
		}
		first = false
		iv := time.Duration(st.IntervalSeconds * float64(time.Second) / 2)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(max(iv, 500*time.Millisecond)):
		}
	}
}

var sampleHeader = []string{"TIME", "CPU", "MEMORY", "LOAD", "DISK R/W", "NET RX/TX", "SSH", "SESSIONS", "VMM CPU", "VMM RSS"}

// sampleRows are fixed-width rows, so rows printed later line up with the
// header printed first.
func sampleRows(ss []api.StatsSample) [][]string {
	var rows [][]string
	for _, s := range ss {
		if s.GuestError != "" {
			rows = append(rows, []string{s.Time.Local().Format("15:04:05"), "guest: " + s.GuestError})
			continue
		}
		rows = append(rows, []string{
			s.Time.Local().Format("15:04:05"),
			fmt.Sprintf("%.1f%%", s.CPUPercent),
			bytesize.Format(int64(s.MemUsed)),
			fmt.Sprintf("%.2f", s.Load[0]),
			rate(s.DiskReadRate) + " / " + rate(s.DiskWriteRate),
			rate(s.NetRxRate) + " / " + rate(s.NetTxRate),
			strconv.Itoa(s.SSHConnections),
			strconv.Itoa(s.Sessions),
			fmt.Sprintf("%.1f%%", s.VMMCPUPercent),
			bytesize.Format(int64(s.VMMRSS)),
		})
	}
	return rows
}

var sampleWidths = []int{8, 6, 10, 5, 22, 22, 3, 8, 7, 10}

func writeRows(w io.Writer, rows [][]string) {
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			if i < len(sampleWidths) && i < len(r)-1 {
				fmt.Fprintf(&b, "%-*s  ", sampleWidths[i], safe(c))
			} else {
				b.WriteString(safe(c))
			}
		}
		fmt.Fprintln(w, b.String())
	}
}

func rate(bps float64) string { return bytesize.Format(int64(bps)) + "/s" }

// statsRows describe the newest sample as "key: value" rows.
func statsRows(st api.VMStats, now time.Time) [][]string {
	rows := [][]string{{"vm:", st.Name + " (" + string(st.State) + ")"}}
	s := st.Current
	if s == nil {
		return append(rows, []string{"sampled:", "never; the daemon samples running VMs every " + secs(st.IntervalSeconds)})
	}
	rows = append(rows, []string{"sampled:", ago(s.Time) + " (every " + secs(st.IntervalSeconds) + ")"})
	if s.GuestError != "" {
		rows = append(rows, []string{"guest:", s.GuestError})
	} else {
		rows = append(rows,
			[]string{"cpu:", fmt.Sprintf("%.1f%% of %d vCPUs, load %.2f %.2f %.2f, %d processes", s.CPUPercent, s.CPUs, s.Load[0], s.Load[1], s.Load[2], s.Procs)},
			[]string{"memory:", usage(s.MemUsed, s.MemTotal)})
		for _, d := range s.Disks {
			rows = append(rows, []string{"disk " + d.Mount + ":", usage(d.Used, d.Total) + " (" + d.Device + ")"})
		}
		rows = append(rows,
			[]string{"disk i/o:", "read " + rate(s.DiskReadRate) + ", write " + rate(s.DiskWriteRate)},
			[]string{"network:", "rx " + rate(s.NetRxRate) + ", tx " + rate(s.NetTxRate)},
			[]string{"ssh:", plural(s.SSHConnections, "connection")},
			[]string{"sessions:", fmt.Sprintf("%d running, %d attached", s.Sessions, s.AttachedSessions)})
	}
	if s.VMMError != "" {
		rows = append(rows, []string{"vmm process:", s.VMMError})
	} else {
		rows = append(rows, []string{"vmm process:", fmt.Sprintf("cpu %.1f%% of a core (%.1fs in total), rss %s", s.VMMCPUPercent, s.VMMCPUSeconds, bytesize.Format(int64(s.VMMRSS)))})
	}
	if m := st.Metrics; m != nil {
		rows = append(rows, metricsRows(*m)...)
	}
	return append(rows, []string{"auto-stop:", autoStopLine(st, now)})
}

func metricsRows(m api.VMMMetrics) [][]string {
	if m.Error != "" {
		return [][]string{{"vmm metrics:", m.Error + " (" + ago(m.Time) + ")"}}
	}
	var rows [][]string
	for _, b := range m.Block {
		rows = append(rows, []string{"vmm " + b.Device + ":", fmt.Sprintf("read %s (%d ops), written %s (%d ops), %d flushes (%s)",
			bytesize.Format(int64(b.ReadBytes)), b.ReadOps, bytesize.Format(int64(b.WriteBytes)), b.WriteOps, b.FlushOps, ago(m.Time))})
	}
	for _, n := range m.Net {
		rows = append(rows, []string{"vmm " + n.Device + ":", fmt.Sprintf("rx %s, tx %s (%s)", bytesize.Format(int64(n.RxBytes)), bytesize.Format(int64(n.TxBytes)), ago(m.Time))})
	}
	return rows
}

// autoStopLine says where the VM stands with auto-stop.
func autoStopLine(st api.VMStats, now time.Time) string {
	var parts []string
	switch {
	case st.State == api.VMPaused:
		return "exempt while paused"
	case st.State != api.VMRunning:
		return "-"
	case st.Busy != "":
		parts = append(parts, "in use ("+st.Busy+")")
	case st.IdleSince != nil:
		parts = append(parts, "idle for "+now.Sub(*st.IdleSince).Round(time.Second).String())
	}
	switch {
	case st.KeepAlive:
		parts = append(parts, "kept alive")
	case st.AutoStopAt != nil:
		parts = append(parts, "stops in "+max(st.AutoStopAt.Sub(now), 0).Round(time.Second).String())
	}
	return strings.Join(parts, ", ")
}

// usageRows are the lines 'vm show' adds for a running VM; a daemon that
// cannot say adds none.
func usageRows(ctx context.Context, cl *client.Client, v api.VM) [][]string {
	rows := [][]string{{"keep alive:", map[bool]string{true: "yes", false: "no"}[v.KeepAlive]}}
	if v.State != api.VMRunning {
		return rows
	}
	st, err := cl.VMStats(ctx, v.Name, 0)
	if err != nil || st.Current == nil || st.Current.GuestError != "" {
		return rows
	}
	s := st.Current
	return append(rows,
		[]string{"usage:", fmt.Sprintf("cpu %.1f%%, memory %s (%s)", s.CPUPercent, usage(s.MemUsed, s.MemTotal), ago(s.Time))},
		[]string{"auto-stop:", autoStopLine(st, time.Now())})
}

func usage(used, total uint64) string {
	if total == 0 {
		return "-"
	}
	return fmt.Sprintf("%s of %s (%d%%)", bytesize.Format(int64(used)), bytesize.Format(int64(total)), used*100/total)
}

func secs(s float64) string { return (time.Duration(s * float64(time.Second))).String() }

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}
