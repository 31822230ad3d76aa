package imagepull

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"banger/api/errdefs"
	"banger/internal/bytesize"
	"banger/internal/progress"
)

// e2fsprogs tools the build needs.
var e2fsTools = []string{"e2fsck", "tune2fs", "resize2fs", "debugfs"}

func checkTools() error {
	for _, t := range e2fsTools {
		if _, err := exec.LookPath(t); err != nil {
			return errdefs.Unavailable("%s not found; install e2fsprogs (apt-get install e2fsprogs) and retry", t)
		}
	}
	return nil
}

// finish turns tar2ext4's compact, read-only image at img into a normal
// writable filesystem: placeholders freed, checked, read-only cleared,
// grown to the wanted (or a content-aware) size, with a journal, synced.
// It returns the filesystem size.
func finish(ctx context.Context, img string, want int64, r reservation, p progress.Func) (int64, error) {
	if _, err := tool(ctx, "tune2fs", "-O", "^read-only,dir_index", img); err != nil {
		return 0, err
	}
	if r.files > 0 {
		if err := clearReserve(ctx, img, r); err != nil {
			return 0, err
		}
	}
	if err := fsck(ctx, img); err != nil {
		return 0, err
	}
	fi, err := os.Stat(img)
	if err != nil {
		return 0, err
	}
	size, err := targetSize(fi.Size(), want)
	if err != nil {
		return 0, err
	}
	p.Step("resize", fmt.Sprintf("growing the filesystem to %s and adding a journal", bytesize.Format(size)))
	if size > fi.Size() {
		if _, err := tool(ctx, "resize2fs", img, strconv.FormatInt(size/1024, 10)+"K"); err != nil {
			return 0, err
		}
	}
	if _, err := tool(ctx, "tune2fs", "-j", img); err != nil {
		return 0, err
	}
	return size, syncFile(img)
}

// clearReserve zeroes the placeholder directory's inode and unlinks
// it; the e2fsck that follows frees the placeholders as unattached empty
// inodes, leaving the inode tables at the size they were written with.
func clearReserve(ctx context.Context, img string, r reservation) error {
	cmd := exec.CommandContext(ctx, "debugfs", "-w", "-f", "-", img)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.Stdin = strings.NewReader("clri /" + r.dir + "\nunlink /" + r.dir + "\n")
	var stderr tail
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("freeing placeholder inodes: debugfs: %v: %s", err, stderr.String())
	}
	// debugfs reports failed requests on stderr and still exits 0.
	for _, line := range strings.Split(stderr.String(), "\n") {
		if line != "" && !strings.HasPrefix(line, "debugfs ") {
			return fmt.Errorf("freeing placeholder inodes: debugfs: %s", line)
		}
	}
	return nil
}

// fsck runs e2fsck -fy; exit codes 0 and 1 (errors corrected) are
// success.
func fsck(ctx context.Context, img string) error {
	cmd := exec.CommandContext(ctx, "e2fsck", "-fy", img)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var out tail
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() <= 1 {
		err = nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("checking the new filesystem: e2fsck: %v: %s", err, out.String())
	}
	return nil
}

// tool runs an e2fsprogs command and returns its combined output.
func tool(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var out tail
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	return f.Close()
}

// tail keeps the last 8 KiB written to it: enough to explain a failure,
// bounded however much e2fsck prints.
type tail struct{ b []byte }

const tailMax = 8 << 10

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 2*tailMax {
		t.b = append(t.b[:0], t.b[len(t.b)-tailMax:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	b := t.b
	if len(b) > tailMax {
		b = b[len(b)-tailMax:]
	}
	return string(bytes.TrimSpace(b))
}
