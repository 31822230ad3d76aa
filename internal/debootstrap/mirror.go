package debootstrap

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
)

// DefaultMirror is the mirror AptMirror falls back to.
const DefaultMirror = "http://deb.debian.org/debian"

// AptMirror is the host's Debian mirror, read from its apt sources
// (deb822 files in /etc/apt/sources.list.d first, then
// /etc/apt/sources.list), falling back to DefaultMirror.
func AptMirror() string {
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	return mirrorFrom(files, "/etc/apt/sources.list")
}

// mirrorFrom picks the mirror from deb822 sources files (the first
// non-security http(s) URI ending in /debian) or, failing that, from a
// one-line-style sources.list (the first non-security http(s) URI of a
// "deb " line).
func mirrorFrom(sources []string, list string) string {
	for _, f := range sources {
		if u := firstURI(f, "URIs:"); u != "" && isDistroMirror(u) {
			return u
		}
	}
	if u := firstURI(list, "deb "); u != "" {
		return u
	}
	return DefaultMirror
}

// isDistroMirror tells a Debian or Ubuntu archive from third-party
// repositories laid out like one (download.docker.com/linux/debian).
func isDistroMirror(u string) bool {
	t := strings.TrimRight(u, "/")
	return (strings.HasSuffix(t, "/debian") || strings.HasSuffix(t, "/ubuntu")) && !strings.Contains(t, "docker.com")
}

// SuiteFor is the release to install from mirror: the host's own
// codename for an Ubuntu archive (debootstrap knows Ubuntu releases),
// DefaultSuite otherwise.
func SuiteFor(mirror string) string {
	if !strings.HasSuffix(strings.TrimRight(mirror, "/"), "/ubuntu") {
		return DefaultSuite
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VERSION_CODENAME="); ok && strings.Trim(v, `"`) != "" {
				return strings.Trim(v, `"`)
			}
		}
	}
	return DefaultSuite
}

// firstURI is the first http(s) URI that is not a security mirror on a
// line of path starting with prefix.
func firstURI(path, prefix string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			for _, w := range strings.Fields(rest) {
				if strings.HasPrefix(w, "http") && !strings.Contains(w, "security") {
					return w
				}
			}
		}
	}
	return ""
}
