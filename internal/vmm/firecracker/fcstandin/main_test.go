package fcstandin

import (
	"os"
	"testing"
)

// The test binary doubles as the stand-in, for tests that run one.
func TestMain(m *testing.M) {
	RunIfStandIn()
	os.Exit(m.Run())
}
