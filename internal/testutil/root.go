package testutil

import (
	"os"
	"testing"
)

// RequiresRoot skips t unless the test runs as root. Root-tier tests
// (bridges, TAPs, nftables inside a test network namespace) call it first;
// CI runs them as root, 'go test ./...' as a user skips them.
func RequiresRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, bridges, TAPs and nftables rules (run the root tier as root, e.g. in CI)")
	}
}
