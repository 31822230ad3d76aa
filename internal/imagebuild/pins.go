package imagebuild

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"
)

// Pins is the devbox tools manifest (devbox/tools.json): every npm
// package the tools step installs, pinned to one version and its
// registry integrity. The step fetches nothing that is not here, and
// refuses a tarball whose SHA-512 differs from the pin.
type Pins struct {
	// Registry is the npm registry the tarballs come from; a build can
	// name a mirror with BANGER_NPM_REGISTRY (the integrity still
	// decides).
	Registry string `json:"registry"`
	Packages []Pin  `json:"packages"`
}

// Pin is one pinned npm package.
type Pin struct {
	Tool string `json:"tool"` // the command it provides
	Arch string `json:"arch"` // uname -m it is for
	Libc string `json:"libc"` // glibc or musl
	// Kind is how it is installed: "bin" copies Path out of the tarball
	// to bin/Tool; "dir" unpacks the package to lib/node_modules/Package
	// and links Path from it; "lock" runs 'npm ci' on the lockfile
	// directory Lock (package.json and package-lock.json, every entry
	// with its integrity) and links Path from it.
	Kind      string `json:"kind"`
	Package   string `json:"package"`
	Version   string `json:"version"`
	Integrity string `json:"integrity,omitempty"` // npm's dist.integrity: sha512-<base64>
	Lock      string `json:"lock,omitempty"`
	Path      string `json:"path,omitempty"`
	Reason    string `json:"reason,omitempty"` // kind none: why there is no package
}

// DevboxArches are the guest architectures (uname -m) the devbox build
// supports: every tool of DevboxTools has a pin, or a "none" entry
// saying why it cannot have one, for each of them.
var DevboxArches = []string{"x86_64", "aarch64"}

// DevboxTools are the tools the tools step installs for each libc: the
// coding tools with what pi runs on for glibc, opencode alone on musl
// (Alpine).
var DevboxTools = map[string][]string{
	"glibc": {"opencode", "mise", "claude", "node", "npm", "pi"},
	"musl":  {"opencode"},
}

// SHA512 is the pin's integrity as the hex digest sha512sum prints.
func (p Pin) SHA512() (string, error) {
	b64, ok := strings.CutPrefix(p.Integrity, "sha512-")
	if !ok {
		return "", fmt.Errorf("%s@%s: integrity %q is not sha512-<base64>", p.Package, p.Version, p.Integrity)
	}
	sum, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(sum) != 64 {
		return "", fmt.Errorf("%s@%s: integrity %q is not a SHA-512 in base64", p.Package, p.Version, p.Integrity)
	}
	return hex.EncodeToString(sum), nil
}

var (
	// npm package names, optionally scoped; versions as npm publishes
	// them. Both end up in URLs and shell words, so nothing else passes.
	pkgName   = regexp.MustCompile(`^(@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*$`)
	pkgVer    = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$`)
	toolName  = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	plainPath = regexp.MustCompile(`^[A-Za-z0-9._/@-]+$`)
)

// DevboxPins reads the embedded manifest.
func DevboxPins() Pins {
	p, err := ParsePins(devboxFS)
	if err != nil {
		panic(err) // embedded and tested: cannot happen
	}
	return p
}

// ParsePins reads devbox/tools.json and the lockfiles it names from fsys
// and checks every pin: a name, version, path or integrity that could not
// be verified or would not be a plain shell word is refused.
func ParsePins(fsys fs.FS) (Pins, error) {
	b, err := fs.ReadFile(fsys, "devbox/tools.json")
	if err != nil {
		return Pins{}, fmt.Errorf("reading the devbox tools manifest: %w", err)
	}
	var p Pins
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Pins{}, fmt.Errorf("reading the devbox tools manifest: %w", err)
	}
	if !strings.HasPrefix(p.Registry, "https://") || strings.ContainsAny(p.Registry, " '\"\\$`") {
		return Pins{}, fmt.Errorf("devbox tools manifest: registry %q must be an https URL", p.Registry)
	}
	for _, pin := range p.Packages {
		if err := checkPin(fsys, pin); err != nil {
			return Pins{}, fmt.Errorf("devbox tools manifest: %w", err)
		}
	}
	return p, nil
}

func checkPin(fsys fs.FS, p Pin) error {
	switch {
	case !toolName.MatchString(p.Tool):
		return fmt.Errorf("tool %q is not a command name", p.Tool)
	case p.Libc != "glibc" && p.Libc != "musl":
		return fmt.Errorf("%s: libc %q is neither glibc nor musl", p.Tool, p.Libc)
	case !toolName.MatchString(strings.ReplaceAll(p.Arch, "_", "-")):
		return fmt.Errorf("%s: arch %q is not a uname -m", p.Tool, p.Arch)
	case p.Kind == "none":
		if p.Reason == "" || p.Package != "" || p.Version != "" || p.Integrity != "" || p.Path != "" || p.Lock != "" {
			return fmt.Errorf("%s (%s, %s): kind none takes a reason and no package", p.Tool, p.Arch, p.Libc)
		}
		return nil
	case !pkgName.MatchString(p.Package) || !pkgVer.MatchString(p.Version):
		return fmt.Errorf("%s: package %q version %q is not an npm name and exact version", p.Tool, p.Package, p.Version)
	case !plainPath.MatchString(p.Path) || path.Clean(p.Path) != p.Path || strings.HasPrefix(p.Path, "/") || strings.HasPrefix(p.Path, ".."):
		return fmt.Errorf("%s: path %q must be a clean relative path", p.Tool, p.Path)
	}
	switch p.Kind {
	case "bin", "dir":
		_, err := p.SHA512()
		return err
	case "lock":
		return checkLock(fsys, p)
	}
	return fmt.Errorf("%s: kind %q is not bin, dir, lock or none", p.Tool, p.Kind)
}

// checkLock makes sure the step installs the pinned version from the
// pin's lockfile and verifies every package it fetches: each entry must
// carry a sha512 integrity (see lockInstall).
func checkLock(fsys fs.FS, p Pin) error {
	if !toolName.MatchString(p.Lock) {
		return fmt.Errorf("%s: lock %q is not a directory name", p.Tool, p.Lock)
	}
	if _, err := fs.ReadFile(fsys, "devbox/"+p.Lock+"/package.json"); err != nil {
		return fmt.Errorf("%s: %w", p.Tool, err)
	}
	_, _, err := lockInstall(fsys, p)
	return err
}

// Versions maps each pinned tool to its version, for the libc and arch
// given (what a build on such a guest installs).
func (p Pins) Versions(arch, libc string) map[string]string {
	out := map[string]string{}
	for _, pin := range p.Packages {
		if pin.Arch == arch && pin.Libc == libc && pin.Kind != "none" {
			out[pin.Tool] = pin.Version
		}
	}
	return out
}

// toolsScript is the tools step: the pins as shell data, the lockfiles,
// then devbox/20-tools.sh, which installs what the pins say.
func toolsScript(fsys fs.FS, p Pins) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# Generated by banger from devbox/tools.json; the step itself follows.\n")
	fmt.Fprintf(&b, "NPM_REGISTRY=${BANGER_NPM_REGISTRY:-%s}\n", p.Registry)
	b.WriteString("pins() {\n\tcat <<'PINS'\n")
	for _, pin := range p.Packages {
		sum := ""
		if pin.Kind == "bin" || pin.Kind == "dir" {
			var err error
			if sum, err = pin.SHA512(); err != nil {
				return nil, err
			}
		}
		fmt.Fprintf(&b, "%s %s %s %s %s %s %s %s %s\n", pin.Tool, pin.Arch, pin.Libc, pin.Kind,
			dash(pin.Package), dash(pin.Version), dash(sum), dash(pin.Lock), dash(pin.Path))
	}
	b.WriteString("PINS\n}\n")
	b.WriteString("# lockfile DIR FILE: a lockfile's content.\nlockfile() {\n\tcase \"$1/$2\" in\n")
	locks := map[string]bool{}
	for _, pin := range p.Packages {
		if pin.Kind != "lock" || locks[pin.Lock] {
			continue
		}
		locks[pin.Lock] = true
		for _, f := range []string{"package.json"} {
			data, err := fs.ReadFile(fsys, "devbox/"+pin.Lock+"/"+f)
			if err != nil {
				return nil, err
			}
			if bytes.Contains(data, []byte("\nLOCKFILE\n")) {
				return nil, fmt.Errorf("%s/%s holds the here-document delimiter", pin.Lock, f)
			}
			fmt.Fprintf(&b, "\t%s/%s) cat <<'LOCKFILE'\n%s\nLOCKFILE\n\t\t;;\n", pin.Lock, f, bytes.TrimRight(data, "\n"))
		}
	}
	b.WriteString("\t*) return 1 ;;\n\tesac\n}\n")
	// lockpkgs LOCK ARCH LIBC: what installing the lockfile puts where
	// ("pkg DIR TARBALL SHA512 FILE" and "bin NAME TARGET" lines).
	b.WriteString("lockpkgs() {\n\tcase \"$1 $2 $3\" in\n")
	for _, pin := range p.Packages {
		if pin.Kind != "lock" {
			continue
		}
		pkgs, bins, err := lockInstall(fsys, pin)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "\t'%s %s %s') cat <<'LOCKPKGS'\n", pin.Lock, pin.Arch, pin.Libc)
		for _, k := range pkgs {
			fmt.Fprintf(&b, "pkg %s %s %s %s\n", k.Dir, k.Tarball, k.SHA512, k.File)
		}
		for _, k := range bins {
			fmt.Fprintf(&b, "bin %s %s\n", k.Name, k.Target)
		}
		b.WriteString("LOCKPKGS\n\t\t;;\n")
	}
	b.WriteString("\t*) return 1 ;;\n\tesac\n}\n")
	body, err := fs.ReadFile(fsys, "devbox/20-tools.sh")
	if err != nil {
		return nil, err
	}
	b.Write(body)
	return b.Bytes(), nil
}

// dash is s, or "-" for an empty field of the pins' shell data.
func dash(s string) string { return cmp.Or(s, "-") }
