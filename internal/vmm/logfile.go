package vmm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// A VMM appends what its guest writes to the serial console to a file
// (QEMU's -chardev file, Firecracker's stdout), and keeps appending across
// daemon restarts, so a guest writing /dev/zero to its serial port would
// fill the host's disk. These helpers bound such logs without the VMM's
// help:
//
//   - TrimLog, while the VMM runs, punches a hole over all but the log's
//     tail (fallocate PUNCH_HOLE, as Firecracker's metrics are consumed):
//     the file keeps its length, so the writer's offset, appending or not,
//     stays valid and nothing is lost or misplaced, but the disk holds only
//     the tail. Where holes cannot be punched it falls back to rewriting
//     the tail and truncating, which may drop what the VMM writes meanwhile.
//   - CompactLog, before a VMM opens the file, rewrites the tail into a
//     fresh file so its apparent length starts small again.
//   - Tail and TailLines read only the tail, skipping holes, so no reader
//     ever holds more than its bound in memory.

// LogTrimmer is implemented by drivers that keep logs of their own that a
// guest can make grow (Firecracker's log file). The daemon calls TrimLogs
// periodically while the VM runs; it cuts each log as TrimLog does.
type LogTrimmer interface {
	TrimLogs(ctx context.Context, h *Handle) error
}

// ConsoleLogFile is the name, in a VM's directory, of the file its VMM
// appends the serial console to (Spec.ConsoleLog).
const ConsoleLogFile = "console.log"

// Log bounds.
const (
	// LogLimit is the log data kept on disk before TrimLog cuts it.
	LogLimit = 8 << 20
	// LogKeep is how much of the tail a cut keeps.
	LogKeep = 1 << 20
)

// TrimLog cuts the log at path to its last keep bytes once it holds more
// than limit bytes of data. A missing file is fine.
func TrimLog(path string, limit, keep int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("trimming %s: %w", path, err)
	}
	defer f.Close()
	return TrimOpenLog(f, path, limit, keep)
}

// TrimOpenLog is TrimLog on a log already open for reading and writing,
// for a caller that had to check what it opened (a file in a VMM's
// chroot); path is for errors.
func TrimOpenLog(f *os.File, path string, limit, keep int64) error {
	size, start, err := dataRange(f)
	if err != nil || size-start <= limit {
		return err
	}
	// Cut on a 64 KiB boundary (a multiple of any block size): a punch
	// that ends mid-block zeroes that block's head instead of freeing it,
	// and readers would see the zeros as data.
	cut := (size - keep) &^ (64<<10 - 1)
	if cut <= start {
		return nil
	}
	perr := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, cut)
	if perr == nil {
		return nil
	}
	if !errors.Is(perr, unix.EOPNOTSUPP) && !errors.Is(perr, unix.ENOSYS) {
		return fmt.Errorf("trimming %s: %w", path, perr)
	}
	return rewriteTail(f, path, size, keep)
}

// rewriteTail moves the last keep bytes of f to its start and truncates.
func rewriteTail(f *os.File, path string, size, keep int64) error {
	tail := make([]byte, min(keep, size))
	if _, err := f.ReadAt(tail, size-int64(len(tail))); err != nil && err != io.EOF {
		return fmt.Errorf("trimming %s: %w", path, err)
	}
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("trimming %s: %w", path, err)
	}
	if _, err := f.WriteAt(tail, 0); err != nil {
		return fmt.Errorf("trimming %s: %w", path, err)
	}
	return nil
}

// CompactLog rewrites the log at path as a new file holding its last keep
// bytes of data. Only call it while no VMM has the file open; a missing
// file is fine.
func CompactLog(path string, keep int64) error {
	tail, err := Tail(path, keep)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("compacting %s: %w", path, err)
	}
	if fi.Size() == int64(len(tail)) {
		return nil // already compact
	}
	tmp := path + ".compact"
	if err := os.WriteFile(tmp, tail, fi.Mode().Perm()); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("compacting %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("compacting %s: %w", path, err)
	}
	return nil
}

// Tail returns at most the last n bytes of data of the file at path,
// reading nothing before them; bytes in a punched hole are not data.
func Tail(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, start, err := dataRange(f)
	if err != nil {
		return nil, err
	}
	from := max(start, size-n)
	buf := make([]byte, size-from)
	k, err := f.ReadAt(buf, from)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return buf[:k], nil
}

// SeekData positions f at its first byte of data (its end when it has
// none), so a reader from the start skips what TrimLog punched out.
func SeekData(f *os.File) error {
	off, err := unix.Seek(int(f.Fd()), 0, unix.SEEK_DATA)
	if errors.Is(err, unix.ENXIO) {
		_, err = f.Seek(0, io.SeekEnd)
		return err
	}
	if err != nil {
		_, err = f.Seek(0, io.SeekStart) // no SEEK_DATA: all data
		return err
	}
	_, err = f.Seek(off, io.SeekStart)
	return err
}

// dataRange returns f's size and the offset of its first data byte.
func dataRange(f *os.File) (size, start int64, err error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	size = fi.Size()
	start, err = unix.Seek(int(f.Fd()), 0, unix.SEEK_DATA)
	switch {
	case errors.Is(err, unix.ENXIO): // only a hole
		return size, size, nil
	case err != nil: // no SEEK_DATA: all data
		return size, 0, nil
	}
	return size, start, nil
}

// TailLines returns the last lines of the log at path for an error
// message: read from at most its last 64 KiB, at most n lines, each cut to
// 256 bytes, 4 KiB in all. Control characters are kept: escaping is the
// renderer's job. A file that cannot be read gives a note saying why.
func TailLines(path string, n int) string {
	data, err := Tail(path, 64<<10)
	if err != nil {
		return "(no console output: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	const maxLine, maxAll = 256, 4 << 10
	total := 0
	for i := len(lines) - 1; i >= 0; i-- {
		if l := lines[i]; len(l) > maxLine {
			cut := len(l) - maxLine
			for cut < len(l) && !utf8.RuneStart(l[cut]) {
				cut++
			}
			lines[i] = "…" + l[cut:]
		}
		if total += len(lines[i]) + 1; total > maxAll {
			lines = lines[i+1:]
			break
		}
	}
	return strings.Join(lines, "\n")
}
