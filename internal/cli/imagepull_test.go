package cli

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"4G": 4 << 30, "4g": 4 << 30, "4GiB": 4 << 30, "4GB": 4 << 30, "512M": 512 << 20, "2.5G": 5 << 29,
		"1T": 1 << 40, "64K": 64 << 10, "1048576": 1 << 20, " 8G ": 8 << 30,
	} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "G", "-1G", "0", "lots", "4X", "1e30T"} {
		if _, err := parseSize(in); err == nil || !strings.Contains(err.Error(), "is not a size") {
			t.Errorf("parseSize(%q) = %v, want an error", in, err)
		}
	}
}
