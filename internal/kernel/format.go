package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"banger/api/errdefs"
)

// Kernel image formats Format reports.
const (
	FormatELF     = "elf"     // uncompressed vmlinux, what Firecracker boots
	FormatBzImage = "bzimage" // x86 boot-protocol image, what QEMU boots directly
)

// ELF header fields, from the System V ABI.
const (
	elfClass64     = 2
	elfData2LSB    = 1
	elfTypeExec    = 2
	elfMachineX86  = 62  // EM_X86_64
	elfMachineARM8 = 183 // EM_AARCH64
)

// bzImageMagicOffset is where the x86 boot protocol header puts "HdrS".
const bzImageMagicOffset = 0x202

// Format tells whether path is an ELF vmlinux (x86-64 or aarch64, 64-bit
// executable) or an x86 bzImage, so callers can pick a VMM or explain why
// a kernel will not boot before trying.
func Format(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("identifying kernel: %w", err)
	}
	defer f.Close()
	head := make([]byte, bzImageMagicOffset+4)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("identifying kernel %s: %w", path, err)
	}
	head = head[:n]
	if len(head) >= 4 && string(head[:4]) == "\x7fELF" {
		if why := checkELF(head); why != "" {
			return "", errdefs.Invalid("kernel %s is an ELF file but not a bootable vmlinux: %s", path, why)
		}
		return FormatELF, nil
	}
	if len(head) == bzImageMagicOffset+4 && string(head[bzImageMagicOffset:]) == "HdrS" {
		return FormatBzImage, nil
	}
	return "", errdefs.Invalid("kernel %s is neither an ELF vmlinux nor a bzImage", path)
}

// checkELF says what is wrong with an ELF header for booting, or "".
func checkELF(h []byte) string {
	if len(h) < 20 {
		return "header is truncated"
	}
	if h[4] != elfClass64 {
		return "not 64-bit"
	}
	if h[5] != elfData2LSB {
		return "not little-endian"
	}
	if t := binary.LittleEndian.Uint16(h[16:]); t != elfTypeExec {
		return fmt.Sprintf("type %d is not an executable", t)
	}
	switch m := binary.LittleEndian.Uint16(h[18:]); m {
	case elfMachineX86, elfMachineARM8:
		return ""
	default:
		return fmt.Sprintf("machine %d is neither x86-64 nor aarch64", m)
	}
}
