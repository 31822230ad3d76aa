package qemu

import (
	"context"
	"encoding/json"
	"fmt"

	"banger/internal/vmm"
)

var _ vmm.MetricsReader = (*Driver)(nil)

// Metrics reads QEMU's counters over QMP: per-disk I/O from
// query-blockstats, the run state from query-status and, under KVM, the
// VM-wide KVM counters from query-stats.
func (d *Driver) Metrics(ctx context.Context, h *vmm.Handle) (vmm.Metrics, error) {
	if err := vmm.CheckAlive(h); err != nil {
		return vmm.Metrics{}, err
	}
	q, err := dialQMP(ctx, h.Sockets["qmp"])
	if err != nil {
		return vmm.Metrics{}, fmt.Errorf("reading qemu metrics: %w", err)
	}
	defer q.close()
	raw, err := q.execute("query-blockstats", nil)
	if err != nil {
		return vmm.Metrics{}, fmt.Errorf("reading qemu metrics: %w", err)
	}
	m := vmm.Metrics{Extra: map[string]any{}}
	if m.Block, err = parseBlockstats(raw); err != nil {
		return vmm.Metrics{}, err
	}
	if raw, err := q.execute("query-status", nil); err == nil {
		var st struct {
			Status string `json:"status"`
		}
		if json.Unmarshal(raw, &st) == nil {
			m.Extra["status"] = st.Status
		}
	}
	if h.Accel == "kvm" {
		// Older QEMUs lack query-stats; the block counters still count.
		if raw, err := q.execute("query-stats", map[string]string{"target": "vm"}); err == nil {
			if kvm := parseKVMStats(raw); len(kvm) > 0 {
				m.Extra["kvm"] = kvm
			}
		}
	}
	return m, nil
}

// parseBlockstats maps query-blockstats to counters per drive ID (the
// Disk.ID given to -drive id=).
func parseBlockstats(raw json.RawMessage) ([]vmm.BlockMetrics, error) {
	var devs []struct {
		Device string `json:"device"`
		Stats  struct {
			RdBytes uint64 `json:"rd_bytes"`
			WrBytes uint64 `json:"wr_bytes"`
			RdOps   uint64 `json:"rd_operations"`
			WrOps   uint64 `json:"wr_operations"`
			FlOps   uint64 `json:"flush_operations"`
		} `json:"stats"`
	}
	if err := json.Unmarshal(raw, &devs); err != nil {
		return nil, fmt.Errorf("decoding qmp query-blockstats: %w", err)
	}
	var out []vmm.BlockMetrics
	for _, d := range devs {
		if d.Device == "" {
			continue // a node without a drive of ours
		}
		out = append(out, vmm.BlockMetrics{
			Device: d.Device, ReadBytes: d.Stats.RdBytes, WriteBytes: d.Stats.WrBytes,
			ReadOps: d.Stats.RdOps, WriteOps: d.Stats.WrOps, FlushOps: d.Stats.FlOps,
		})
	}
	return out, nil
}

// parseKVMStats flattens query-stats' scalar values to name -> value.
func parseKVMStats(raw json.RawMessage) map[string]any {
	var res []struct {
		Provider string `json:"provider"`
		Stats    []struct {
			Name  string          `json:"name"`
			Value json.RawMessage `json:"value"`
		} `json:"stats"`
	}
	if json.Unmarshal(raw, &res) != nil {
		return nil
	}
	out := map[string]any{}
	for _, r := range res {
		for _, s := range r.Stats {
			var n uint64
			if json.Unmarshal(s.Value, &n) == nil { // histograms are lists: skipped
				out[s.Name] = n
			}
		}
	}
	return out
}
