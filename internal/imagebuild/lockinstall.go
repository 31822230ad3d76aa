package imagebuild

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// A lock pin is installed without npm: npm under the builder's emulated
// CPU spends minutes starting and resolving what the lockfile already
// says. The step gets, for the pin's arch and libc, every package of the
// lockfile with where it goes and its SHA-512, fetches them in one curl,
// checks them all with one sha512sum -c, and unpacks each where npm ci
// would; the bin links npm ci makes for top-level packages follow.

// lockPkg is one package of a lockfile as the step installs it.
type lockPkg struct {
	Dir     string // where it is unpacked, relative to the install: node_modules/...
	Tarball string // its tarball, relative to the registry: NAME/-/BASE-VERSION.tgz
	SHA512  string // hex
	File    string // the tarball's name in the step's download directory
}

// lockBin is a link node_modules/.bin/Name -> Target (relative to .bin).
type lockBin struct{ Name, Target string }

type lockEntry struct {
	Name      string          `json:"name"`
	Version   string          `json:"version"`
	Integrity string          `json:"integrity"`
	Link      bool            `json:"link"`
	Dev       bool            `json:"dev"`
	OS        []string        `json:"os"`
	CPU       []string        `json:"cpu"`
	Libc      []string        `json:"libc"`
	Bin       json.RawMessage `json:"bin"`
}

var binName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// npmCPU is npm's name (process.arch) for a uname -m.
var npmCPU = map[string]string{"x86_64": "x64", "aarch64": "arm64"}

// lockInstall is what installing p's lockfile puts where, for p's arch
// and libc: packages for another platform are left out, as npm leaves out
// optional packages that do not fit; dev packages are left out as with
// --omit=dev. Every name, version and path must be plain, every package
// must carry a SHA-512 integrity.
func lockInstall(fsys fs.FS, p Pin) ([]lockPkg, []lockBin, error) {
	b, err := fs.ReadFile(fsys, "devbox/"+p.Lock+"/package-lock.json")
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", p.Tool, err)
	}
	var lock struct {
		LockfileVersion int                  `json:"lockfileVersion"`
		Packages        map[string]lockEntry `json:"packages"`
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		return nil, nil, fmt.Errorf("%s: reading its package-lock.json: %w", p.Tool, err)
	}
	if lock.LockfileVersion < 2 {
		return nil, nil, fmt.Errorf("%s: package-lock.json is version %d; regenerate it with npm 7 or later", p.Tool, lock.LockfileVersion)
	}
	top, ok := lock.Packages["node_modules/"+p.Package]
	if !ok || top.Version != p.Version {
		return nil, nil, fmt.Errorf("%s: package-lock.json pins %s at %q, the manifest at %q; regenerate the lockfile", p.Tool, p.Package, top.Version, p.Version)
	}
	var pkgs []lockPkg
	var bins []lockBin
	for dir, e := range lock.Packages {
		if dir == "" || e.Link || e.Dev {
			continue
		}
		i := strings.LastIndex(dir, "node_modules/")
		if !strings.HasPrefix(dir, "node_modules/") || i < 0 || path.Clean(dir) != dir || strings.Contains(dir, "..") || !plainPath.MatchString(dir) {
			return nil, nil, fmt.Errorf("%s: package-lock.json entry %q is not a node_modules path", p.Tool, dir)
		}
		name := cmp.Or(e.Name, dir[i+len("node_modules/"):])
		if !pkgName.MatchString(name) || !pkgVer.MatchString(e.Version) {
			return nil, nil, fmt.Errorf("%s: package-lock.json entry %s: %q %q is not an npm name and exact version", p.Tool, dir, name, e.Version)
		}
		pin := Pin{Package: name, Version: e.Version, Integrity: e.Integrity}
		sum, err := pin.SHA512()
		if err != nil {
			return nil, nil, fmt.Errorf("%s: package-lock.json entry %s has no sha512 integrity, so it could not be verified: %w", p.Tool, dir, err)
		}
		if !fits(e.OS, "linux") || !fits(e.CPU, npmCPU[p.Arch]) || !fits(e.Libc, p.Libc) {
			continue
		}
		pkgs = append(pkgs, lockPkg{Dir: dir, Tarball: name + "/-/" + path.Base(name) + "-" + e.Version + ".tgz", SHA512: sum,
			File: strings.NewReplacer("@", "", "/", "_").Replace(name) + "-" + e.Version + ".tgz"})
		if strings.Count(dir, "node_modules/") == 1 {
			bs, err := lockBins(dir, e.Bin)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: package-lock.json entry %s: %w", p.Tool, dir, err)
			}
			bins = append(bins, bs...)
		}
	}
	sort.Slice(pkgs, func(i, j int) bool { return pkgs[i].Dir < pkgs[j].Dir })
	// The same package at two places is two downloads: they must not
	// share a file.
	for i := range pkgs {
		pkgs[i].File = fmt.Sprintf("%03d-%s", i, pkgs[i].File)
	}
	sort.Slice(bins, func(i, j int) bool { return bins[i].Name < bins[j].Name })
	return pkgs, bins, nil
}

// fits is npm's platform check of one field: empty allows all, "!x"
// excludes x, and a list naming some values allows only those.
func fits(list []string, v string) bool {
	if slices.Contains(list, "!"+v) {
		return false
	}
	positive := slices.ContainsFunc(list, func(x string) bool { return !strings.HasPrefix(x, "!") })
	return !positive || slices.Contains(list, v)
}

// lockBins reads an entry's bin: a map of names to paths in the package
// (a string bin is named after the package; lockfiles write maps).
func lockBins(dir string, raw json.RawMessage) ([]lockBin, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("bin is not a map of names to paths")
	}
	var out []lockBin
	for name, target := range m {
		target = path.Clean(strings.TrimPrefix(target, "./"))
		if !binName.MatchString(name) || !plainPath.MatchString(target) || strings.HasPrefix(target, "..") || strings.HasPrefix(target, "/") {
			return nil, fmt.Errorf("bin %q -> %q is not a plain name and path in the package", name, target)
		}
		out = append(out, lockBin{Name: name, Target: "../" + strings.TrimPrefix(dir, "node_modules/") + "/" + target})
	}
	return out, nil
}
