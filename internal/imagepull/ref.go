package imagepull

import (
	"net"
	"net/netip"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"banger/api/errdefs"
)

// ParseRef parses an image reference. With insecure the registry may be
// reached over plain HTTP, which is only allowed for registries on this
// machine or a private network.
func ParseRef(s string, insecure bool) (name.Reference, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errdefs.Invalid("an image reference is required, such as debian:bookworm or ghcr.io/org/image:tag")
	}
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(s, opts...)
	if err != nil {
		return nil, errdefs.Invalid("%q is not an image reference (%v); write it like debian:bookworm or registry.example.com/team/image:tag", s, err)
	}
	if insecure && !devRegistry(ref.Context().RegistryStr()) {
		return nil, errdefs.Invalid("--insecure is only allowed for registries on loopback or a private network, not %s; public registries must serve HTTPS", ref.Context().RegistryStr())
	}
	return ref, nil
}

// devRegistry reports whether host[:port] names a loopback or
// private-network registry: localhost, a private or loopback address, or
// a name that public DNS cannot resolve.
func devRegistry(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast()
	}
	if !strings.Contains(host, ".") {
		return true // "localhost", "registry" on a LAN or in /etc/hosts
	}
	for _, suffix := range []string{".localhost", ".local", ".internal", ".lan", ".home.arpa", ".test"} {
		if strings.HasSuffix(host, suffix) {
			return true
		}
	}
	return false
}

// hostPlatform is the platform images must have to boot here.
func hostPlatform() v1.Platform {
	return v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

// parsePlatform reads os/arch[/variant]; "" means the host's. banger
// boots images natively, so the architecture must be the host's.
func parsePlatform(s string) (v1.Platform, error) {
	host := hostPlatform()
	if s == "" {
		return host, nil
	}
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" {
		return v1.Platform{}, errdefs.Invalid("--platform %q is not os/arch[/variant]; use e.g. %s", s, host)
	}
	if p.OS != "linux" {
		return v1.Platform{}, errdefs.Invalid("--platform %s: banger boots Linux guests only; use %s", s, host)
	}
	if p.Architecture != host.Architecture {
		return v1.Platform{}, errdefs.Invalid("--platform %s: this host is %s and banger boots images natively; use %s", s, host.Architecture, host)
	}
	return *p, nil
}

// DefaultName derives an image name (a DNS label) from a reference:
// debian:bookworm becomes debian-bookworm, ghcr.io/org/devbox becomes
// devbox, and a digest reference keeps 12 hex digits of the digest.
func DefaultName(ref string) string {
	s := ref
	var suffix string
	if repo, dig, ok := strings.Cut(s, "@"); ok {
		s = repo
		if _, hex, ok := strings.Cut(dig, ":"); ok && len(hex) >= 12 {
			suffix = hex[:12]
		}
	}
	last := s[strings.LastIndex(s, "/")+1:]
	if repo, tag, ok := strings.Cut(last, ":"); ok {
		last = repo
		if suffix == "" && tag != "latest" {
			suffix = tag
		}
	}
	if suffix != "" {
		last += "-" + suffix
	}
	return label(last)
}

// label maps s onto a DNS label: lowercase letters, digits and single
// dashes, at most 63 characters.
func label(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	l := strings.Trim(b.String(), "-")
	if len(l) > 63 {
		l = strings.TrimRight(l[:63], "-")
	}
	if l == "" {
		return "image"
	}
	return l
}

// shortDigest is the 12 hex digits users see for a layer.
func shortDigest(h v1.Hash) string {
	if len(h.Hex) < 12 {
		return h.Hex
	}
	return h.Hex[:12]
}

func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}
