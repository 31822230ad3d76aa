package cli

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Text that came from a guest or a registry (process and session names,
// command lines, errors with a console tail, events, image and kernel
// fields) is hostile: an ESC or C1 byte in it could retitle the terminal,
// clear it, move the cursor or fake a prompt. The CLI shows such text
// through safe or safeText, at the point it renders it; --json output is
// left exact.

// safe returns s as one line a terminal shows and never acts on: C0
// controls (line breaks and tabs too), DEL and invalid UTF-8 become \xNN,
// and other non-printable runes (C1 controls, bidi overrides, line
// separators) become \uNNNN (\UNNNNNNNN beyond the BMP). Printable Unicode is kept.
func safe(s string) string { return escapeText(s, false) }

// safeText is safe for text of several lines: newlines and tabs are kept.
func safeText(s string) string { return escapeText(s, true) }

func escapeText(s string, multiline bool) string {
	if printableASCII(s, multiline) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case multiline && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r == ' ' || unicode.IsPrint(r):
			b.WriteString(s[i : i+n])
		case r > 0xffff:
			fmt.Fprintf(&b, `\U%08x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += n
	}
	return b.String()
}

// printableASCII is the fast path: nothing to escape.
func printableASCII(s string, multiline bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c < 0x7f || multiline && (c == '\n' || c == '\t') {
			continue
		}
		return false
	}
	return true
}
