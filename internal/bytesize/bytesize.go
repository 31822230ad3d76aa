// Package bytesize renders byte counts for people, the same way in the
// CLI, the daemon's messages and the web UI: powers of 1024, one decimal
// ("1.5 GiB"), plain bytes below 1 KiB.
package bytesize

import "fmt"

// Format renders n bytes.
func Format[N ~int | ~int64 | ~uint64](n N) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := N(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
