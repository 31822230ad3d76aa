// Package image validates and manages banger's image sets: a rootfs plus
// the kernel (and optional initrd, modules and work-seed) it boots with.
//
// A managed image lives in a directory the daemon owns; an unmanaged one
// references host paths. Managed directories are built in a staging
// directory and renamed into place before any database row points at them.
package image

import (
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"regexp"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/kernel"
)

var labelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidateName checks that name is a DNS label, so it can become a
// hostname and a directory name.
func ValidateName(kind, name string) error {
	if name == "" {
		return errdefs.Invalid("%s name is required; pass --name", kind)
	}
	if !labelRE.MatchString(name) {
		return errdefs.Invalid("%s name %q is not a DNS label; use 1-63 lowercase letters, digits and '-', not starting or ending with '-'", kind, name)
	}
	return nil
}

// ext4 superblock: starts at byte 1024, s_magic at offset 56 is 0xEF53.
const (
	sbOffset   = 1024
	magicOff   = 56
	ext4Magic  = 0xEF53
	minExt4Len = sbOffset + magicOff + 2
)

// CheckExt4 verifies that path is a regular file holding an ext2/3/4
// filesystem.
func CheckExt4(flag, path string) error {
	if err := checkFile(flag, path); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return errdefs.Invalid("%s %s: %v", flag, path, err)
	}
	defer f.Close()
	var buf [2]byte
	if _, err := f.ReadAt(buf[:], sbOffset+magicOff); err != nil && err != io.EOF {
		return errdefs.Invalid("%s %s: reading superblock: %v", flag, path, err)
	}
	if binary.LittleEndian.Uint16(buf[:]) != ext4Magic {
		return errdefs.Invalid("%s %s is not an ext4 filesystem image (no ext4 superblock); create one with mkfs.ext4 or 'banger image pull'", flag, path)
	}
	return nil
}

// CheckKernel verifies that path is an ELF vmlinux or a bzImage.
func CheckKernel(flag, path string) error {
	if err := checkFile(flag, path); err != nil {
		return err
	}
	if _, err := kernel.Format(path); err != nil {
		return errdefs.Invalid("%s: %v", flag, err)
	}
	return nil
}

// CheckDir verifies that path is an existing directory.
func CheckDir(flag, path string) error {
	if err := checkAbs(flag, path); err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return errdefs.Invalid("%s %s: %v", flag, path, noSuch(err))
	}
	if !fi.IsDir() {
		return errdefs.Invalid("%s %s is not a directory", flag, path)
	}
	return nil
}

func checkFile(flag, path string) error {
	if err := checkAbs(flag, path); err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return errdefs.Invalid("%s %s: %v", flag, path, noSuch(err))
	}
	if !fi.Mode().IsRegular() {
		return errdefs.Invalid("%s %s is not a regular file", flag, path)
	}
	return nil
}

func checkAbs(flag, path string) error {
	if !filepath.IsAbs(path) {
		return errdefs.Invalid("%s %q must be an absolute path", flag, path)
	}
	return nil
}

func noSuch(err error) string {
	if os.IsNotExist(err) {
		return "no such file"
	}
	return err.Error()
}

// CheckRegister validates a register request whose kernel fields are
// already resolved (either given or taken from a kernel ref).
func CheckRegister(req api.RegisterImageRequest) error {
	if err := ValidateName("image", req.Name); err != nil {
		return err
	}
	if req.Rootfs == "" {
		return errdefs.Invalid("--rootfs is required: the path of an ext4 root filesystem image")
	}
	if err := CheckExt4("--rootfs", req.Rootfs); err != nil {
		return err
	}
	if req.WorkSeed != "" {
		if err := CheckExt4("--work-seed", req.WorkSeed); err != nil {
			return err
		}
	}
	if req.Kernel == "" {
		return errdefs.Invalid("a kernel is required: pass --kernel /path/to/vmlinux or --kernel-ref NAME (see 'banger kernel list')")
	}
	if err := CheckKernel("--kernel", req.Kernel); err != nil {
		return err
	}
	if req.Initrd != "" {
		if err := checkFile("--initrd", req.Initrd); err != nil {
			return err
		}
	}
	if req.Modules != "" {
		if err := CheckDir("--modules", req.Modules); err != nil {
			return err
		}
	}
	return nil
}

// ApparentSize is the logical size of a file, 0 if it cannot be read.
func ApparentSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
