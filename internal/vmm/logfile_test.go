package vmm

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// diskBytes is the space a file takes on disk.
func diskBytes(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// A VMM keeps writing while the log is trimmed: QEMU appends, Firecracker
// writes at its own offset. Either way the disk holds about the limit,
// every write lands where its writer meant it, and the tail is intact.
func TestTrimLogWhileTheVMMWrites(t *testing.T) {
	for _, appendMode := range []bool{true, false} {
		t.Run(map[bool]string{true: "append", false: "own offset"}[appendMode], func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "console.log")
			flags := os.O_CREATE | os.O_WRONLY
			if appendMode {
				flags |= os.O_APPEND
			}
			f, err := os.OpenFile(path, flags, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			const limit, keep, chunk = 4 << 20, 1 << 20, 256 << 10
			var total int64
			var last []byte
			for i := range 200 { // 50 MiB written
				last = bytes.Repeat([]byte(fmt.Sprintf("%07d\n", i)), chunk/8)
				if _, err := f.Write(last); err != nil {
					t.Fatal(err)
				}
				total += chunk
				if i%4 == 3 {
					if err := TrimLog(path, limit, keep); err != nil {
						t.Fatal(err)
					}
				}
				if used := diskBytes(t, path); used > limit+2<<20 {
					t.Fatalf("after %d MiB written the log takes %d MiB on disk", total>>20, used>>20)
				}
			}
			if fi, _ := os.Stat(path); fi.Size() != total {
				t.Errorf("apparent size %d; want %d (every write where its writer meant it)", fi.Size(), total)
			}
			tail, err := Tail(path, chunk)
			if err != nil || !bytes.Equal(tail, last) {
				t.Errorf("tail is %d bytes (err %v), not the last write", len(tail), err)
			}
		})
	}
}

// Readers take only the tail, however large the file claims to be.
func TestTailOfAHugeLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console.log")
	f, _ := os.Create(path)
	f.Truncate(64 << 30) // a 64 GiB hole, then the last lines
	f.WriteAt([]byte("booting\nkernel panic: no init\n"), 64<<30)
	f.Close()
	data, err := Tail(path, 64<<10)
	if err != nil || !bytes.HasSuffix(data, []byte("kernel panic: no init\n")) || len(data) > 64<<10 {
		t.Fatalf("Tail: %d bytes, %v", len(data), err)
	}
	if got := TailLines(path, 15); got != "booting\nkernel panic: no init" && !strings.HasSuffix(got, "\nbooting\nkernel panic: no init") {
		t.Errorf("TailLines = %q", got)
	}
}

func TestTailLinesIsBounded(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content string
		check   func(string) bool
	}{
		{"one endless line", strings.Repeat("\x1b]0;pwned\x07\x1b[2J", 1<<20), func(s string) bool {
			return len(s) <= 256+len("…") && !strings.Contains(s, "\n")
		}},
		{"many lines", strings.Repeat("line\n", 10000), func(s string) bool { return strings.Count(s, "\n") == 14 }},
		{"many long lines", strings.Repeat(strings.Repeat("x", 300)+"\n", 100), func(s string) bool {
			return len(s) <= 4<<10 && strings.HasSuffix(s, strings.Repeat("x", 256))
		}},
	}
	for _, tt := range tests {
		path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
		os.WriteFile(path, []byte(tt.content), 0o600)
		if got := TailLines(path, 15); !tt.check(got) {
			t.Errorf("%s: TailLines gave %d bytes, %d lines", tt.name, len(got), strings.Count(got, "\n")+1)
		}
	}
	if got := TailLines(filepath.Join(dir, "missing"), 15); !strings.HasPrefix(got, "(no console output: ") {
		t.Errorf("missing file: %q", got)
	}
}

func TestCompactLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console.log")
	f, _ := os.Create(path)
	f.Write(bytes.Repeat([]byte("x"), 3<<20))
	f.Write([]byte("the end\n"))
	f.Close()
	if err := TrimLog(path, 1<<20, 4096); err != nil {
		t.Fatal(err)
	}
	if err := CompactLog(path, 4096); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if len(data) != 4096 || !bytes.HasSuffix(data, []byte("the end\n")) {
		t.Errorf("compacted log is %d bytes ending %q; want 4096 ending in the last line", len(data), data[max(len(data)-8, 0):])
	}
	if err := CompactLog(filepath.Join(t.TempDir(), "missing"), 4096); err != nil {
		t.Errorf("compacting a missing log: %v", err)
	}
}
