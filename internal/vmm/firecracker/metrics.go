package firecracker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"banger/internal/vmm"
)

// Metrics flushes Firecracker's metrics and returns the newest line: one
// JSON object of counters (see Firecracker's docs/metrics.md). Firecracker
// also appends a line every 60 seconds on its own.
func (d *Driver) Metrics(ctx context.Context, h *vmm.Handle) ([]byte, error) {
	if err := vmm.CheckAlive(h); err != nil {
		return nil, err
	}
	if err := d.client(h).Action(ctx, ActionFlushMetrics); err != nil {
		return nil, fmt.Errorf("flushing metrics: %w", err)
	}
	line, err := lastLine(layoutOf(h).metrics)
	if err != nil {
		return nil, fmt.Errorf("reading metrics: %w", err)
	}
	return line, nil
}

// lastLine returns the last complete line of the file at path, reading
// at most its final 1 MiB.
func lastLine(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	const window = 1 << 20
	if fi, err := f.Stat(); err == nil && fi.Size() > window {
		f.Seek(fi.Size()-window, io.SeekStart)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	data = bytes.TrimRight(data, "\n")
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[i+1:]
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%s holds no metrics yet", path)
	}
	return data, nil
}
