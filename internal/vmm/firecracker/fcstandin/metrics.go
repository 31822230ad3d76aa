package fcstandin

import (
	"encoding/json"
	"errors"
	"os"
	"syscall"
	"time"
)

// What the stand-in's guest does between two metrics flushes, on the nth
// drive and the nth network interface (n counts from 1, in the order
// they were added): n times each of these. Tests predict the counters
// from them.
const (
	ActivityReadBytes  = 4096
	ActivityWriteBytes = 512
	ActivityReads      = 2
	ActivityWrites     = 1
	ActivityFlushes    = 1
	ActivityRxBytes    = 1500
	ActivityTxBytes    = 100
	ActivityRxPackets  = 3
	ActivityTxPackets  = 1
)

// openMetrics opens the metrics destination as Firecracker does: read and
// write, non-blocking (a FIFO must not block the VMM), and not in append
// mode, so each line goes at Firecracker's own file offset whatever
// happened to the file since.
func openMetrics(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|syscall.O_NONBLOCK, 0)
}

// flushMetrics writes one line as Firecracker does: a JSON object with
// utc_timestamp_ms, per-device groups "block_<drive_id>" and
// "net_<iface_id>" with their aggregates "block" and "net", and the
// other groups. Counters are deltas since the previous flush (Firecracker's
// SharedIncMetric), so a line holds only the activity since the last one.
func (m *machine) flushMetrics() error {
	if m.metrics == nil {
		return errors.New("metrics are not configured")
	}
	line := map[string]any{
		"utc_timestamp_ms": time.Now().UnixMilli(),
		"api_server":       map[string]uint64{"process_startup_time_us": 0, "process_startup_time_cpu_us": 0},
		"vcpu":             map[string]uint64{"exit_io_in": 0, "exit_io_out": 0, "exit_mmio_read": 0, "exit_mmio_write": 0, "failures": 0},
		"vmm":              map[string]uint64{"device_events": 0, "panic_count": 0},
		"seccomp":          map[string]uint64{"num_faults": 0},
		"signals":          map[string]uint64{"sigbus": 0, "sigsegv": 0, "sigxfsz": 0, "sigxcpu": 0, "sigpipe": 0},
	}
	blockAll := blockMetrics(0)
	for i, d := range m.drives {
		b := blockMetrics(uint64(i + 1))
		line["block_"+d.id] = b
		for k, v := range b {
			blockAll[k] += v
		}
	}
	line["block"] = blockAll
	netAll := netMetrics(0)
	for i, iface := range m.nets {
		n := netMetrics(uint64(i + 1))
		line["net_"+iface.id] = n
		for k, v := range n {
			netAll[k] += v
		}
	}
	line["net"] = netAll
	data, err := json.Marshal(line)
	if err != nil {
		return err
	}
	_, err = m.metrics.Write(append(data, '\n'))
	return err
}

// blockMetrics is one drive's group (BlockDeviceMetrics) for n times the
// per-flush activity.
func blockMetrics(n uint64) map[string]uint64 {
	return map[string]uint64{
		"activate_fails": 0, "cfg_fails": 0, "no_avail_buffer": 0, "event_fails": 0, "execute_fails": 0,
		"invalid_reqs_count": 0, "flush_count": n * ActivityFlushes, "queue_event_count": n * (ActivityReads + ActivityWrites),
		"rate_limiter_event_count": 0, "update_count": 0, "update_fails": 0,
		"read_bytes": n * ActivityReadBytes, "write_bytes": n * ActivityWriteBytes,
		"read_count": n * ActivityReads, "write_count": n * ActivityWrites,
		"rate_limiter_throttled_events": 0, "io_engine_throttled_events": 0, "remaining_reqs_count": 0,
	}
}

// netMetrics is one interface's group (NetDeviceMetrics) for n times the
// per-flush activity.
func netMetrics(n uint64) map[string]uint64 {
	return map[string]uint64{
		"activate_fails": 0, "cfg_fails": 0, "mac_address_updates": 0, "no_rx_avail_buffer": 0, "no_tx_avail_buffer": 0,
		"event_fails": 0, "rx_queue_event_count": n, "rx_event_rate_limiter_count": 0, "rx_tap_event_count": n,
		"rx_bytes_count": n * ActivityRxBytes, "rx_packets_count": n * ActivityRxPackets, "rx_fails": 0, "rx_count": n,
		"tap_read_fails": 0, "tap_write_fails": 0, "tx_bytes_count": n * ActivityTxBytes, "tx_malformed_frames": 0,
		"tx_fails": 0, "tx_count": n, "tx_packets_count": n * ActivityTxPackets, "tx_queue_event_count": n,
		"tx_rate_limiter_event_count": 0, "tx_rate_limiter_throttled": 0, "tx_spoofed_mac_count": 0,
	}
}
