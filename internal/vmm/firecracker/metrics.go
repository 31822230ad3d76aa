package firecracker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"banger/internal/vmm"
)

var _ vmm.MetricsReader = (*Driver)(nil)

// Metrics implements vmm.MetricsReader. It sends FlushMetrics, then reads
// every line Firecracker wrote to metrics.json since the last call (its
// own flushes every 60 seconds included). Firecracker's block and net
// counters are deltas since its previous flush, so the driver adds each
// line's "block_<drive_id>" and "net_<iface_id>" groups to totals it
// keeps in the runtime directory (metrics.state.json), which makes them
// cumulative since the VMM started, across daemon restarts. The newest
// line's other groups ("vcpu", "vmm", "api_server", ...) go to Extra as
// Firecracker wrote them: their counters are that flush's deltas. The
// aggregates "block" and "net" are left out; they sum the devices.
//
// Lines once counted are punched out of metrics.json (fallocate
// PUNCH_HOLE), so the file takes no more disk space than the lines not
// read yet. Its apparent size still grows: Firecracker does not open it
// in append mode and writes each line at its own offset, so truncating
// the file would not move where the next line goes.
func (d *Driver) Metrics(ctx context.Context, h *vmm.Handle) (vmm.Metrics, error) {
	if err := vmm.CheckAlive(h); err != nil {
		return vmm.Metrics{}, err
	}
	if err := d.client(h).Action(ctx, ActionFlushMetrics); err != nil {
		return vmm.Metrics{}, fmt.Errorf("flushing metrics: %w", err)
	}
	l := layoutOf(h)
	m, err := collectMetrics(l.metrics, l.metricsState())
	if err != nil {
		return vmm.Metrics{}, fmt.Errorf("reading metrics: %w", err)
	}
	return m, nil
}

// metricsState is what Metrics keeps between calls.
type metricsState struct {
	// Offset is where the first line not counted yet starts.
	Offset int64                       `json:"offset"`
	Block  map[string]vmm.BlockMetrics `json:"block,omitempty"`
	Net    map[string]vmm.NetMetrics   `json:"net,omitempty"`
	// Extra is the newest line's other groups.
	Extra map[string]json.RawMessage `json:"extra,omitempty"`
}

// collectMetrics counts the lines of the metrics file at path written
// since the offset in the state file, saves the new totals and returns
// them. The state file is locked meanwhile, so two callers cannot count
// a line twice.
func collectMetrics(path, statePath string) (vmm.Metrics, error) {
	sf, err := os.OpenFile(statePath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return vmm.Metrics{}, err
	}
	defer sf.Close()
	if err := syscall.Flock(int(sf.Fd()), syscall.LOCK_EX); err != nil {
		return vmm.Metrics{}, fmt.Errorf("locking %s: %w", statePath, err)
	}
	var st metricsState
	if data, _ := io.ReadAll(sf); len(data) > 0 && json.Unmarshal(data, &st) != nil {
		// Lost totals start again from zero. Counted lines are holes
		// (zeros) in the file by now, so reading it from the start
		// counts none of them twice.
		st = metricsState{}
	}
	// Under the jailer the file is in the jail's chroot: a link there
	// must not make bangerd read, or punch holes in, another file.
	f, err := openInJail(path, os.O_RDWR, fileCheck{what: "the metrics file", single: true, fromVMM: true})
	if err != nil {
		return vmm.Metrics{}, err
	}
	defer f.Close()
	end, err := st.add(f)
	if err != nil {
		return vmm.Metrics{}, fmt.Errorf("reading %s: %w", path, err)
	}
	if end > st.Offset {
		st.Offset = end
		// Best effort: a filesystem without hole punching keeps the
		// lines, and nothing is counted twice either way.
		unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, end)
	}
	data, err := json.Marshal(st)
	if err != nil {
		return vmm.Metrics{}, err
	}
	if err := sf.Truncate(0); err != nil {
		return vmm.Metrics{}, err
	}
	if _, err := sf.WriteAt(data, 0); err != nil {
		return vmm.Metrics{}, fmt.Errorf("saving metrics totals: %w", err)
	}
	return st.metrics(), nil
}

// Bounds on what one collection reads: Firecracker's lines are a few
// KiB, and the file is written by a process a guest may control.
const (
	maxMetricsLine = 1 << 20  // a longer line is skipped, not parsed
	maxMetricsRead = 64 << 20 // the rest waits for the next call
)

// add reads f from st.Offset and adds every complete line to st. It
// returns the offset after the last complete line: a line Firecracker is
// still writing is left for the next call, unless it is already longer
// than any line Firecracker writes, which is skipped. It reads at most
// about maxMetricsRead bytes.
func (st *metricsState) add(f *os.File) (int64, error) {
	if _, err := f.Seek(st.Offset, io.SeekStart); err != nil {
		return 0, err
	}
	r := bufio.NewReaderSize(f, 64<<10)
	end := st.Offset
	var line []byte
	var n int64 // bytes of the current line read so far, holes included
	long := false
	for end-st.Offset < maxMetricsRead {
		chunk, err := r.ReadSlice('\n')
		n += int64(len(chunk))
		// Holes read as zeros: where lines were punched out, or where
		// Firecracker's offset runs ahead of a truncated file.
		if len(line) == 0 {
			chunk = bytes.TrimLeft(chunk, "\x00")
		}
		if long || len(line)+len(chunk) > maxMetricsLine {
			long, line = true, line[:0]
		} else {
			line = append(line, chunk...)
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if long {
				end += n
			}
			return end, nil
		case err != nil:
			return end, err
		}
		end += n
		if line = bytes.Trim(line, "\x00\n"); len(line) > 0 {
			st.addLine(line)
		}
		line, n, long = line[:0], 0, false
	}
	return end, nil
}

// addLine adds one flush's counters. A line that is not a JSON object
// (a write cut short when the disk filled up) is skipped.
func (st *metricsState) addLine(line []byte) {
	var groups map[string]json.RawMessage
	if json.Unmarshal(line, &groups) != nil {
		return
	}
	extra := map[string]json.RawMessage{}
	for name, raw := range groups {
		switch {
		case strings.HasPrefix(name, "block_"):
			var c blockCounters
			if json.Unmarshal(raw, &c) == nil {
				st.addBlock(strings.TrimPrefix(name, "block_"), c)
			}
		case strings.HasPrefix(name, "net_"):
			var c netCounters
			if json.Unmarshal(raw, &c) == nil {
				st.addNet(strings.TrimPrefix(name, "net_"), c)
			}
		case name != "block" && name != "net":
			extra[name] = raw
		}
	}
	st.Extra = extra
}

// blockCounters are the fields of a "block_<drive_id>" group banger reads.
type blockCounters struct {
	ReadBytes  uint64 `json:"read_bytes"`
	WriteBytes uint64 `json:"write_bytes"`
	ReadCount  uint64 `json:"read_count"`
	WriteCount uint64 `json:"write_count"`
	FlushCount uint64 `json:"flush_count"`
}

// netCounters are the fields of a "net_<iface_id>" group banger reads.
type netCounters struct {
	RxBytes   uint64 `json:"rx_bytes_count"`
	TxBytes   uint64 `json:"tx_bytes_count"`
	RxPackets uint64 `json:"rx_packets_count"`
	TxPackets uint64 `json:"tx_packets_count"`
}

func (st *metricsState) addBlock(id string, c blockCounters) {
	if st.Block == nil {
		st.Block = map[string]vmm.BlockMetrics{}
	}
	b := st.Block[id]
	b.Device = id
	b.ReadBytes += c.ReadBytes
	b.WriteBytes += c.WriteBytes
	b.ReadOps += c.ReadCount
	b.WriteOps += c.WriteCount
	b.FlushOps += c.FlushCount
	st.Block[id] = b
}

func (st *metricsState) addNet(id string, c netCounters) {
	if st.Net == nil {
		st.Net = map[string]vmm.NetMetrics{}
	}
	n := st.Net[id]
	n.Device = id
	n.RxBytes += c.RxBytes
	n.TxBytes += c.TxBytes
	n.RxPackets += c.RxPackets
	n.TxPackets += c.TxPackets
	st.Net[id] = n
}

// metrics is st as vmm.Metrics, devices sorted by id.
func (st *metricsState) metrics() vmm.Metrics {
	var m vmm.Metrics
	for _, id := range slices.Sorted(maps.Keys(st.Block)) {
		m.Block = append(m.Block, st.Block[id])
	}
	for _, id := range slices.Sorted(maps.Keys(st.Net)) {
		m.Net = append(m.Net, st.Net[id])
	}
	if len(st.Extra) > 0 {
		m.Extra = make(map[string]any, len(st.Extra))
		for name, raw := range st.Extra {
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber() // counters are u64: keep them exact
			var v any
			if dec.Decode(&v) == nil {
				m.Extra[name] = v
			}
		}
	}
	return m
}
