// Package ext4 edits and creates ext4 images with e2fsprogs, without
// mounting them and without root: mkfs.ext4 for new filesystems, debugfs
// to read files and to write files in (the guest agent into every VM's
// root filesystem), e2fsck and resize2fs to grow them.
package ext4

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
)

// File is a file, directory or symlink to write into an image.
type File struct {
	Path string      // absolute path inside the image
	Mode fs.FileMode // permissions plus fs.ModeDir / fs.ModeSymlink
	UID  int
	GID  int
	Data []byte // regular files
	Link string // symlinks
}

// Create makes an empty ext4 filesystem of size bytes at path (which must
// not exist), owned by root, with the given label.
func Create(ctx context.Context, path string, size int64, label string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	err = f.Truncate(size)
	f.Close()
	if err == nil {
		_, err = run(ctx, "mkfs.ext4", "-q", "-F", "-L", label, "-E", "nodiscard,root_owner=0:0", "-m", "0", path)
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("making ext4 filesystem %s: %w", path, err)
	}
	return nil
}

// Grow checks the filesystem and grows it (and its file) to size bytes;
// an image already that large is left alone.
func Grow(ctx context.Context, path string, size int64) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Size() >= size {
		return nil
	}
	if err := Check(ctx, path); err != nil {
		return err
	}
	if err := os.Truncate(path, size); err != nil {
		return fmt.Errorf("growing %s: %w", path, err)
	}
	if _, err := run(ctx, "resize2fs", "-f", path, strconv.FormatInt(size/1024, 10)+"K"); err != nil {
		return fmt.Errorf("resizing %s: %w", path, err)
	}
	return nil
}

// Check runs e2fsck -fy; exit codes 0 and 1 (errors fixed) are success.
func Check(ctx context.Context, path string) error {
	cmd := exec.CommandContext(ctx, "e2fsck", "-f", "-y", path)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checking %s: e2fsck: %v: %s", path, err, tail(out))
	}
	return nil
}

// ReadLink returns the target of a symlink inside image.
func ReadLink(ctx context.Context, image, p string) (string, error) {
	out, err := debugfs(ctx, image, false, "stat "+quote(p))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(out, "\n") {
		if target, ok := strings.CutPrefix(strings.TrimSpace(line), "Fast link dest: "); ok {
			return strings.Trim(target, `"`), nil
		}
	}
	// Long targets live in a data block: cat prints them.
	if strings.Contains(out, "Type: symlink") {
		return debugfs(ctx, image, false, "cat "+quote(p))
	}
	return "", fmt.Errorf("%s in %s is not a symlink", p, image)
}

// Exists reports whether p exists in image (without following a final
// symlink).
func Exists(ctx context.Context, image, p string) (bool, error) {
	out, err := debugfs(ctx, image, false, "stat "+quote(p))
	if err != nil {
		if strings.Contains(err.Error(), "File not found") {
			return false, nil
		}
		return false, err
	}
	return strings.Contains(out, "Inode:"), nil
}

// ReadFile returns the contents of a regular file in image.
func ReadFile(ctx context.Context, image, p string) ([]byte, error) {
	if ok, err := Exists(ctx, image, p); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("%s: %w", p, fs.ErrNotExist)
		}
		return nil, err
	}
	out, err := debugfs(ctx, image, false, "cat "+quote(p))
	return []byte(out), err
}

// Resolve follows symlinks (absolute and relative) from p inside image
// and returns the final path, or fs.ErrNotExist.
func Resolve(ctx context.Context, image, p string) (string, error) {
	for i := 0; i < 16; i++ {
		ok, err := Exists(ctx, image, p)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", fmt.Errorf("%s: %w", p, fs.ErrNotExist)
		}
		target, err := ReadLink(ctx, image, p)
		if err != nil {
			return p, nil // not a symlink
		}
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(p), target)
		}
		p = path.Clean(target)
	}
	return "", fmt.Errorf("too many symlinks resolving %s in %s", p, image)
}

func debugfs(ctx context.Context, image string, write bool, request string) (string, error) {
	args := []string{"-R", request, image}
	if write {
		args = append([]string{"-w"}, args...)
	}
	cmd := exec.CommandContext(ctx, "debugfs", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("debugfs %q on %s: %v: %s", request, image, err, tail(stderr.Bytes()))
	}
	// debugfs exits 0 even when the request failed; errors go to stderr
	// after its version banner.
	if msg := requestErrors(stderr.String()); msg != "" {
		return "", fmt.Errorf("debugfs %q on %s: %s", request, image, msg)
	}
	return stdout.String(), nil
}

func requestErrors(stderr string) string {
	var errs []string
	for _, line := range strings.Split(stderr, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "debugfs ") {
			continue
		}
		errs = append(errs, line)
	}
	return strings.Join(errs, "; ")
}

func run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s: %v: %s", name, err, tail(out))
	}
	return string(out), nil
}

func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 600 {
		s = "..." + s[len(s)-600:]
	}
	return s
}

// quote wraps a debugfs argument in double quotes.
func quote(p string) string { return `"` + strings.ReplaceAll(p, `"`, `\"`) + `"` }
