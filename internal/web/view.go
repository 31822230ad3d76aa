package web

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"banger/api"
	"banger/internal/bytesize"
)

// sparkSamples is how many samples a sparkline shows.
const sparkSamples = 40

// vmView is a VM as pages show it and the live stream sends it. Only what
// is shown is here: no host keys, paths or handles.
type vmView struct {
	Name      string      `json:"name"`
	State     api.VMState `json:"state"`
	IP        string      `json:"ip"`
	Image     string      `json:"image"`
	VMM       string      `json:"vmm"`
	CPUs      int         `json:"cpus"`
	Memory    string      `json:"memory"`
	Uptime    string      `json:"uptime"`
	CPU       string      `json:"cpu"`     // newest guest CPU share
	Mem       string      `json:"mem"`     // newest guest memory use
	CPUPoints string      `json:"cpu_pts"` // SVG polyline points, 0..100 x 0..24
	MemPoints string      `json:"mem_pts"`
	AutoStop  string      `json:"auto_stop"`
	KeepAlive bool        `json:"keep_alive"`
	LastError string      `json:"last_error"`
}

// vmViews lists every VM with its recent samples.
func (s *Server) vmViews(ctx context.Context) ([]vmView, error) {
	vms, err := s.d.VMs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]vmView, 0, len(vms))
	now := time.Now()
	for _, v := range vms {
		st, err := s.d.VMStats(ctx, v.Name, sparkSamples)
		if err != nil {
			st = api.VMStats{}
		}
		out = append(out, newVMView(v, st, now))
	}
	return out, nil
}

func newVMView(v api.VM, st api.VMStats, now time.Time) vmView {
	vv := vmView{
		Name: v.Name, State: v.State, IP: orDash(v.IP), Image: v.Image, VMM: v.VMM, CPUs: v.CPUs,
		Memory: bytesize.Format(uint64(v.MemoryMiB) << 20), Uptime: "-", CPU: "-", Mem: "-",
		KeepAlive: v.KeepAlive, LastError: v.LastError, AutoStop: autoStop(st, now),
	}
	if v.State != api.VMRunning {
		return vv
	}
	if !v.StartedAt.IsZero() {
		vv.Uptime = duration(now.Sub(v.StartedAt))
	}
	if c := st.Current; c != nil && c.GuestError == "" {
		vv.CPU = fmt.Sprintf("%.1f%%", c.CPUPercent)
		vv.Mem = bytesize.Format(c.MemUsed) + " / " + bytesize.Format(c.MemTotal)
	}
	var cpu, mem []float64
	for _, x := range st.History {
		if x.GuestError != "" {
			continue
		}
		cpu = append(cpu, x.CPUPercent)
		if x.MemTotal > 0 {
			mem = append(mem, 100*float64(x.MemUsed)/float64(x.MemTotal))
		}
	}
	vv.CPUPoints, vv.MemPoints = points(cpu), points(mem)
	return vv
}

// points draws percentages as an SVG polyline in a 100x24 box, the newest
// value at the right edge.
func points(vals []float64) string {
	if len(vals) == 0 {
		return ""
	}
	var b strings.Builder
	step := 100.0 / float64(sparkSamples-1)
	x0 := 100 - step*float64(len(vals)-1)
	for i, v := range vals {
		v = min(max(v, 0), 100)
		fmt.Fprintf(&b, "%.1f,%.1f ", x0+step*float64(i), 23-v*22/100)
	}
	return strings.TrimSpace(b.String())
}

func autoStop(st api.VMStats, now time.Time) string {
	switch {
	case st.State != api.VMRunning:
		return "-"
	case st.KeepAlive:
		return "kept alive"
	case st.Busy != "":
		return "in use: " + st.Busy
	case st.AutoStopAt != nil:
		return "idle, stops in " + duration(st.AutoStopAt.Sub(now))
	case st.IdleSince != nil:
		return "idle " + duration(now.Sub(*st.IdleSince))
	}
	return "-"
}

// duration is a short human duration: 45s, 12m, 3h20m, 2d4h.
func duration(d time.Duration) string {
	d = max(d, 0).Round(time.Second)
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return duration(time.Since(t)) + " ago"
}
