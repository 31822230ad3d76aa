package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// syntaxError reports a TOML error as file:line:col, like a compiler.
func syntaxError(data []byte, name string, err error) error {
	var de *toml.DecodeError
	if !errors.As(err, &de) {
		return fmt.Errorf("%s: %w", name, err)
	}
	line, col := de.Position()
	msg := strings.TrimPrefix(de.Error(), "toml: ")
	return fmt.Errorf("%s:%d:%d: %s%s", name, line, col, msg, quoteHint(data, line))
}

// quoteHint catches the commonest mistake, an unquoted string such as
// log_level = info, whose parser message ("expected newline but got
// U+006F 'o'", as "inf" reads as a float) does not say what to do.
func quoteHint(data []byte, line int) string {
	lines := strings.Split(string(data), "\n")
	if line < 1 || line > len(lines) {
		return ""
	}
	key, value, ok := strings.Cut(lines[line-1], "=")
	key = strings.TrimSpace(key)
	value, _, _ = strings.Cut(value, "#")
	value = strings.TrimSpace(value)
	if !ok || key == "" || strings.ContainsAny(key, ` "'[`) || !holdsString(key) ||
		value == "" || strings.ContainsAny(value, `"'[]{}`) {
		return "" // not a bare value where a string belongs
	}
	return fmt.Sprintf("; if %s is meant as a string, quote it: %s = %s", value, key, quote(value))
}

// holdsString reports whether key takes a string; unknown keys might.
func holdsString(key string) bool {
	for _, f := range fields {
		if f.key == key {
			return f.want == tomlString
		}
	}
	return true
}

// suggest returns the candidate closest to s within an edit distance of
// 3, or "" if none is close enough to be a likely typo. Changing half of
// a word is not a typo: "verbos" must not suggest "error".
func suggest(s string, candidates []string) string {
	best, bestDist := "", 4
	lower := strings.ToLower(s)
	for _, c := range candidates {
		if d := editDistance(lower, c); d < bestDist && 2*d < max(len(s), len(c)) {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes:
// keys and choices are ASCII.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
