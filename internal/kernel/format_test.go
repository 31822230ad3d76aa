package kernel

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"banger/api/errdefs"
)

// elfHeader returns a minimal little-endian ELF header.
func elfHeader(class byte, typ, machine uint16) []byte {
	h := make([]byte, 64)
	copy(h, "\x7fELF")
	h[4], h[5], h[6] = class, elfData2LSB, 1
	binary.LittleEndian.PutUint16(h[16:], typ)
	binary.LittleEndian.PutUint16(h[18:], machine)
	return h
}

func bzImageHeader() []byte {
	h := make([]byte, 0x400)
	h[0x1fe], h[0x1ff] = 0x55, 0xaa
	copy(h[0x202:], "HdrS")
	return h
}

func TestFormat(t *testing.T) {
	tests := []struct {
		name    string
		content []byte
		want    string
		wantErr string
	}{
		{"elf x86-64", elfHeader(elfClass64, elfTypeExec, elfMachineX86), FormatELF, ""},
		{"elf aarch64", elfHeader(elfClass64, elfTypeExec, elfMachineARM8), FormatELF, ""},
		{"bzimage", bzImageHeader(), FormatBzImage, ""},
		{"elf32", elfHeader(1, elfTypeExec, 3), "", "not 64-bit"},
		{"elf shared object", elfHeader(elfClass64, 3, elfMachineX86), "", "type 3 is not an executable"},
		{"elf riscv", elfHeader(elfClass64, elfTypeExec, 243), "", "machine 243 is neither x86-64 nor aarch64"},
		{"garbage", []byte(strings.Repeat("garbage ", 100)), "", "is neither an ELF vmlinux nor a bzImage"},
		{"tiny", []byte("\x7fEL"), "", "is neither an ELF vmlinux nor a bzImage"},
		{"empty", nil, "", "is neither an ELF vmlinux nor a bzImage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vmlinux")
			if err := os.WriteFile(path, tt.content, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := Format(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) || !errors.Is(err, errdefs.ErrInvalid) {
					t.Fatalf("got %q, %v; want invalid error naming the file and containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := Format(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v, want not exist", err)
	}
}
