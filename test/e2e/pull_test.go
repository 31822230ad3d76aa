//go:build e2e

package e2e

import (
	"io"
	"log"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
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

// TestPullCreateSSH is the path users take: an image from a registry is
// pulled, booted and reached over SSH. The registry runs in the test: one
// in-memory registry served on the host's loopback (for the push) and on
// the namespace's loopback (for the daemon's pull).
func TestPullCreateSSH(t *testing.T) {
	e := newEnv(t, "")
	e.startDaemon()
	k := fixture.DebianKernel(t)
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

	layerTar := filepath.Join(t.TempDir(), "layer.tar")
	if out, err := exec.Command("tar", "-C", fixture.DebianRootfs(t), "--numeric-owner", "--xattrs", "-cf", layerTar, ".").CombinedOutput(); err != nil {
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
	ref, err := name.ParseReference(host.Addr().String() + "/fixtures/debian:bookworm")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("pushing the fixture image: %v", err)
	}

	t0 := time.Now()
	e.ok("image", "pull", ref.String(), "--insecure", "--name", "deb", "--kernel", k.Vmlinuz, "--initrd", k.Initrd, "--modules", k.Modules)
	t.Logf("image pull: %s", time.Since(t0).Round(100*time.Millisecond))
	if out := e.ok("image", "pull", ref.String(), "--insecure", "--name", "deb", "--kernel", k.Vmlinuz, "--initrd", k.Initrd, "--modules", k.Modules); !strings.Contains(out, "up to date") {
		t.Errorf("second pull of the same digest: %q, want it to say the image is up to date", out)
	}
	e.ok("vm", "create", "--name", "pulled", "--image", "deb", "--memory", "512", "--disk-size", "1G")
	if got := strings.TrimSpace(e.ssh("pulled", "stat -c %U:%G /usr/bin/sudo /etc/shadow 2>/dev/null || stat -c %U:%G /etc/shadow")); !strings.Contains(got, "root:shadow") {
		t.Errorf("ownership in the pulled image: %q, want /etc/shadow root:shadow", got)
	}
	if got := strings.TrimSpace(e.ssh("pulled", "git --version")); !strings.HasPrefix(got, "git version") {
		t.Errorf("git in the pulled image: %q", got)
	}
}
