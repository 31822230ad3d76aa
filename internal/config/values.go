package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

const listenHint = `use an address such as "127.0.0.1:7777", or "" to disable the web UI`

// checkListenAddr accepts only IP literals and "localhost" so the address
// the UI binds is the one the user reads, not whatever DNS says today.
func checkListenAddr(s string) error {
	if s == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port; %s", s, listenHint)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a number from 0 to 65535; %s", port, listenHint)
	}
	if host == "" {
		return fmt.Errorf("%q has no host; %s", s, listenHint)
	}
	if _, err := netip.ParseAddr(host); err != nil && host != "localhost" {
		return fmt.Errorf("host %q is not an IP address or \"localhost\"; %s", host, listenHint)
	}
	return nil
}

// exposedWarning explains, for a valid address, why binding beyond
// loopback is risky; it returns "" for a local address.
func exposedWarning(s string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "localhost" {
		return ""
	}
	if ip, err := netip.ParseAddr(host); err != nil || ip.IsLoopback() {
		return ""
	}
	return fmt.Sprintf("web_listen_addr: %s exposes the web UI to the network; use 127.0.0.1:%s to keep it on this machine", s, port)
}

// checkAbs requires an absolute path or "", hint naming a good value.
func checkAbs(hint string) func(string) error {
	return func(s string) error {
		if s == "" || filepath.IsAbs(s) {
			return nil
		}
		return fmt.Errorf("%q is not an absolute path; use a path starting with / or ~/, such as %s", s, hint)
	}
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// checkImageName requires a DNS label because image names end up in
// hostnames and file names.
func checkImageName(s string) error {
	if dnsLabel.MatchString(s) {
		return nil
	}
	return fmt.Errorf("%q is not a valid image name; use 1 to 63 lowercase letters, digits or '-', not starting or ending with '-', such as %q",
		s, labelFrom(s))
}

// labelFrom turns s into the nearest DNS label, to suggest as a fix.
func labelFrom(s string) string {
	l := strings.Map(func(r rune) rune {
		r = unicode.ToLower(r)
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			return r
		}
		return '-'
	}, s)
	l = strings.Trim(l, "-")
	if len(l) > 63 {
		l = strings.TrimRight(l[:63], "-")
	}
	if l == "" {
		return "default"
	}
	return l
}

// checkBridgeName applies the kernel's dev_valid_name rules, so a bad
// name fails here rather than deep inside netlink.
func checkBridgeName(s string) error {
	const hint = `use letters, digits, '-' or '_', such as "banger0"`
	switch {
	case s == "":
		return fmt.Errorf("is empty; %s", hint)
	case len(s) > 15:
		return fmt.Errorf("%q is %d bytes long; Linux interface names are at most 15, %s", s, len(s), hint)
	case s == "." || s == "..":
		return fmt.Errorf("%q is not a valid interface name; %s", s, hint)
	}
	if i := strings.IndexFunc(s, func(r rune) bool {
		return r == '/' || r == ':' || r == 0 || unicode.IsSpace(r)
	}); i >= 0 {
		return fmt.Errorf("%q contains %q, which Linux interface names cannot hold; %s", s, []rune(s[i:])[0], hint)
	}
	return nil
}

func checkVMM(s string) error {
	if s == VMMFirecracker || s == VMMQEMU {
		return nil
	}
	return choiceError(s, "vmm", VMMFirecracker, VMMQEMU)
}

// How the default image is made when it is missing.
const (
	DefaultImageAuto        = "auto"
	DefaultImageOCI         = "oci"
	DefaultImageDebootstrap = "debootstrap"
)

func checkImageSource(s string) error {
	if s == DefaultImageAuto || s == DefaultImageOCI || s == DefaultImageDebootstrap {
		return nil
	}
	return choiceError(s, "default_image_source", DefaultImageAuto, DefaultImageOCI, DefaultImageDebootstrap)
}

func checkImageRef(s string) error {
	if s == "" || strings.ContainsAny(s, " \t\n") {
		return fmt.Errorf("%q is not an image reference; write it like \"debian:bookworm\" or \"ghcr.io/org/devbox:tag\"", s)
	}
	return nil
}

func checkMirror(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL; write it like \"http://deb.debian.org/debian\" or leave it empty for the host's apt sources", s)
	}
	return nil
}

// choiceError rejects s as not one of choices, suggesting the nearest.
func choiceError(s, what string, choices ...string) error {
	quoted := make([]string, len(choices))
	for i, c := range choices {
		quoted[i] = strconv.Quote(c)
	}
	list := strings.Join(quoted, ", ")
	if near := suggest(s, choices); near != "" {
		return fmt.Errorf("%q is not a valid %s; did you mean %q? (use one of %s)", s, what, near, list)
	}
	return fmt.Errorf("%q is not a valid %s; use one of %s", s, what, list)
}

const catalogHint = `use an http://, https:// or file:// URL or an absolute path, such as "https://example.com/kernels.json"`

func checkCatalogURL(s string) error {
	if s == "" || filepath.IsAbs(s) {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return fmt.Errorf("%q is neither a URL nor an absolute path; %s", s, catalogHint)
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return fmt.Errorf("%q has no host; %s", s, catalogHint)
		}
	case "file":
		if (u.Host != "" && u.Host != "localhost") || !strings.HasPrefix(u.Path, "/") {
			return fmt.Errorf("%q does not name an absolute path; write a file URL as \"file:///srv/kernels.json\"", s)
		}
	default:
		return fmt.Errorf("%q has unsupported scheme %q; %s", s, u.Scheme, catalogHint)
	}
	return nil
}

const kernelRefHint = `use the name of a kernel from 'banger kernel list', such as "debian-6.1", or "" for none`

// checkKernelRef applies the kernel catalog's name rules, so a typo fails
// when the config is read rather than at the first image pull.
func checkKernelRef(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > 63 {
		return fmt.Errorf("%q is %d characters long; kernel names are at most 63, %s", s, len(s), kernelRefHint)
	}
	for i, r := range s {
		alnum := r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || r != '.' && r != '-' && r != '_') {
			return fmt.Errorf("%q is not a kernel name (lowercase letters, digits, '.', '-' and '_', starting with a letter or digit); %s", s, kernelRefHint)
		}
	}
	return nil
}
