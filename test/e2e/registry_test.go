//go:build e2e

package e2e

import (
	"io"
	"log"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"banger/internal/testutil/fixture"
)

// fixtureRegistry runs an in-memory registry for the test, served on the
// host's loopback (for pushes from the test) and on the namespace's
// loopback at the same address (for the daemon's pulls). It returns that
// address.
func fixtureRegistry(t *testing.T, e *env) string {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	host, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var inNS net.Listener
	if err := e.ns.Do(func() error {
		var err error
		inNS, err = net.Listen("tcp", host.Addr().String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, l := range []net.Listener{host, inNS} {
		srv := &http.Server{Handler: reg, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
	}
	return host.Addr().String()
}

// pushDebianFixture pushes the Debian fixture rootfs, as one layer, to a
// fixture registry and returns its reference.
func pushDebianFixture(t *testing.T, e *env) name.Reference {
	t.Helper()
	return pushRootfsFixture(t, e, fixture.DebianRootfs(t))
}

// pushRootfsFixture is pushDebianFixture for the root filesystem in dir.
func pushRootfsFixture(t *testing.T, e *env, dir string) name.Reference {
	t.Helper()
	addr := fixtureRegistry(t, e)
	layerTar := filepath.Join(t.TempDir(), "layer.tar")
	if out, err := exec.Command("tar", "-C", dir, "--numeric-owner", "--xattrs", "-cf", layerTar, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	layer, err := tarball.LayerFromFile(layerTar)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(addr + "/fixtures/debian:bookworm")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("pushing the fixture image: %v", err)
	}
	return ref
}
