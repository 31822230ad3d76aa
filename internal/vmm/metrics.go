package vmm

import (
	"context"
	"fmt"
)

// MetricsReader is an optional Driver capability: the VMM's own counters
// about a VM, as opposed to what the guest agent reports. The daemon finds
// it by interface assertion and calls it every metrics_poll_interval for
// each running VM; a driver without it (or answering ErrUnsupported) simply
// has no VMM metrics. Set Capabilities.Metrics when implementing it.
//
// Counters are cumulative since the VMM started. Drivers whose VMM reports
// deltas sum them across calls.
//
// QEMU answers from QMP (query-blockstats; query-stats for KVM counters).
// Firecracker writes metrics as one JSON object per line to the file
// configured with PUT /metrics before boot, every 60 seconds or on a
// FlushMetrics action, mostly as deltas since the previous line; its
// driver (internal/vmm/firecracker, metrics.go) flushes, reads the lines
// written since its last call and adds up "block_<drive>" and
// "net_<iface>" per device, putting the other groups in Extra.
type MetricsReader interface {
	Metrics(ctx context.Context, h *Handle) (Metrics, error)
}

// Metrics are a VMM's counters about one VM.
type Metrics struct {
	Block []BlockMetrics
	Net   []NetMetrics
	// Extra is anything else the VMM reports, JSON-encodable.
	Extra map[string]any
}

// BlockMetrics are one disk's counters; Device is the Disk.ID.
type BlockMetrics struct {
	Device                      string
	ReadBytes, WriteBytes       uint64
	ReadOps, WriteOps, FlushOps uint64
}

// NetMetrics are one network interface's counters.
type NetMetrics struct {
	Device               string
	RxBytes, TxBytes     uint64
	RxPackets, TxPackets uint64
}

// ReadMetrics asks d for h's metrics, or returns ErrUnsupported when d
// cannot give any.
func ReadMetrics(ctx context.Context, d Driver, h *Handle) (Metrics, error) {
	mr, ok := d.(MetricsReader)
	if !ok {
		return Metrics{}, fmt.Errorf("reading %s metrics: %w", d.Name(), ErrUnsupported)
	}
	return mr.Metrics(ctx, h)
}
