// Package testutil holds helpers shared by banger's tests: skipping tests
// that need root, and network namespaces that keep host-network tests off
// the host's own network.
package testutil
