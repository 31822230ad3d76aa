package mcpserver

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestHeadBuffer(t *testing.T) {
	b := &headBuffer{limit: 5}
	for _, p := range []string{"ab", "cdef", "ghij"} {
		if n, err := b.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	if got, want := b.Text(), "abcde\n[banger: output truncated: 5 more bytes not shown]"; got != want {
		t.Errorf("Text = %q; want %q", got, want)
	}
	// A rune cut at the limit becomes U+FFFD, never invalid UTF-8.
	b = &headBuffer{limit: 2}
	b.Write([]byte("aé"))
	if got := b.Text(); !utf8.ValidString(got) || !strings.HasPrefix(got, "a\uFFFD") {
		t.Errorf("cut rune: %q", got)
	}
}

func TestTailBuffer(t *testing.T) {
	b := &tailBuffer{limit: 4}
	b.Write([]byte("ab"))
	if got := b.Text(); got != "ab" || b.Truncated() {
		t.Errorf("under the limit: %q, %v", got, b.Truncated())
	}
	b.Write([]byte("cdef"))
	b.Write([]byte("g"))
	if got, want := b.Text(), "[banger: output truncated: 3 earlier bytes not shown]\ndefg"; got != want {
		t.Errorf("Text = %q; want %q", got, want)
	}
	b.Write([]byte("0123456789"))
	if got, want := b.Text(), "[banger: output truncated: 13 earlier bytes not shown]\n6789"; got != want {
		t.Errorf("after a long write: %q; want %q", got, want)
	}
	// A rune cut by the window's start is dropped.
	b = &tailBuffer{limit: 3}
	b.Write([]byte("xé!!"))
	if got := b.Text(); !strings.HasSuffix(got, "\n!!") || !utf8.ValidString(got) {
		t.Errorf("cut rune: %q", got)
	}
}
