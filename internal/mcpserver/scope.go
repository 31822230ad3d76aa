package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gofrs/flock"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/fsutil"
	"banger/internal/image"
)

// Scope limits what the MCP client may touch.
type Scope struct {
	// Name separates the VMs of several MCP servers (one per agent or
	// project): each name has its own ownership record.
	Name string
	// AllVMs lets the client use every VM of the user, not only the
	// ones this scope created. Deleting is still limited to owned VMs.
	AllVMs bool
	// MaxVMs caps the VMs this scope owns at once; 0 means no cap.
	MaxVMs int
	// Images are the images the client may create VMs from; empty means
	// any. When set, a create that names no image uses the first one.
	Images []string
	// WorkDir is the directory the server was started in: the git work
	// tree containing it is a host path the workspace tools may use.
	WorkDir string
	// Repos are more directories whose git work trees the workspace
	// tools may use (--allow-repo).
	Repos []string
	// AllRepos lets the workspace tools use any host path (--all-repos).
	AllRepos bool
}

// DefaultScopeName is the scope of a server started without --scope.
const DefaultScopeName = "default"

// DefaultMaxVMs is the cap of a server started without --max-vms.
const DefaultMaxVMs = 4

// Validate checks the scope's settings.
func (s Scope) Validate() error {
	if err := image.ValidateName("scope", s.Name); err != nil {
		return err
	}
	if s.MaxVMs < 0 {
		return errdefs.Invalid("--max-vms is %d; give 0 (no cap) or a positive number", s.MaxVMs)
	}
	for _, im := range s.Images {
		if err := image.ValidateName("image", im); err != nil {
			return fmt.Errorf("--allow-image: %w", err)
		}
	}
	for _, r := range s.Repos {
		if r == "" {
			return errdefs.Invalid("--allow-repo is empty; give the path of a directory")
		}
		if _, err := resolveDir(r); err != nil {
			return allowRepoErr(r, err)
		}
	}
	return nil
}

// pendingTTL is how long a reservation without a VM stays counted: a
// create in progress in another process, or one a crash interrupted.
const pendingTTL = time.Hour

// owned is one VM a scope created (or is creating).
type owned struct {
	Name string `json:"name"`
	// ID is the daemon's id of the VM; "" while the create is running.
	// It tells this VM from a later one of the same name.
	ID       string    `json:"id,omitempty"`
	Reserved time.Time `json:"reserved"`
}

// ownership is the durable record of a scope's VMs: a JSON file, read
// and rewritten under a file lock, so several servers of one scope agree.
type ownership struct {
	path string
}

func newOwnership(stateDir, scope string) ownership {
	return ownership{path: filepath.Join(stateDir, "mcp", scope+".json")}
}

// update runs fn on the record under the lock and writes back what fn
// leaves, when it says so.
func (o ownership) update(fn func(list []owned) ([]owned, bool, error)) error {
	if err := os.MkdirAll(filepath.Dir(o.path), 0o700); err != nil {
		return fmt.Errorf("creating the mcp state directory: %w", err)
	}
	lk := flock.New(o.path + ".lock")
	if err := lk.Lock(); err != nil {
		return fmt.Errorf("locking %s: %w", o.path, err)
	}
	defer lk.Unlock()
	list, err := o.read()
	if err != nil {
		return err
	}
	list, write, err := fn(list)
	if err != nil || !write {
		return err
	}
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(o.path, append(data, '\n'), 0o600)
}

func (o ownership) read() ([]owned, error) {
	data, err := os.ReadFile(o.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the mcp ownership record: %w", err)
	}
	var list []owned
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("the mcp ownership record %s is damaged (%v); fix or remove it", o.path, err)
	}
	return list, nil
}

// live drops records whose VM is gone (a reservation only once it is
// older than pendingTTL) and returns what is left.
func live(list []owned, vms []api.VM, now time.Time) []owned {
	byName := map[string]api.VM{}
	for _, v := range vms {
		byName[v.Name] = v
	}
	var out []owned
	for _, e := range list {
		v, ok := byName[e.Name]
		switch {
		case e.ID == "" && (ok || now.Sub(e.Reserved) < pendingTTL):
			out = append(out, e)
		case e.ID != "" && ok && v.ID == e.ID:
			out = append(out, e)
		}
	}
	return out
}

// owns reports whether the record holds vm.
func owns(list []owned, vm api.VM) bool {
	for _, e := range list {
		if e.Name != vm.Name {
			continue
		}
		if e.ID == vm.ID || (e.ID == "" && !vm.CreatedAt.Before(e.Reserved.Add(-time.Second))) {
			return true
		}
	}
	return false
}

// guard applies a Scope with its ownership record.
type guard struct {
	scope Scope
	own   ownership
	now   func() time.Time
}

// reserve records name before its create starts, refusing when the
// image is not allowed or the scope is full; vms is the daemon's list.
func (g *guard) reserve(name, img string, vms []api.VM) error {
	if len(g.scope.Images) > 0 && !slices.Contains(g.scope.Images, img) {
		return errdefs.Invalid("image %q is not allowed for this MCP server; allowed images: %s", img, strings.Join(g.scope.Images, ", "))
	}
	return g.own.update(func(list []owned) ([]owned, bool, error) {
		list = live(list, vms, g.now())
		if g.scope.MaxVMs > 0 && len(list) >= g.scope.MaxVMs {
			return nil, false, errdefs.Conflict("this MCP server already has %d VM(s) (%s), its limit (--max-vms %d); delete one with vm_delete first",
				len(list), names(list), g.scope.MaxVMs)
		}
		for _, e := range list {
			if e.Name == name {
				return nil, false, errdefs.Conflict("vm %q is already being created by this MCP server; pick another name", name)
			}
		}
		return append(list, owned{Name: name, Reserved: g.now()}), true, nil
	})
}

// created completes name's reservation with the VM's id.
func (g *guard) created(vm api.VM) error {
	return g.own.update(func(list []owned) ([]owned, bool, error) {
		for i := range list {
			if list[i].Name == vm.Name && list[i].ID == "" {
				list[i].ID = vm.ID
			}
		}
		return list, true, nil
	})
}

// release forgets name (its create failed, or it was deleted).
func (g *guard) release(name string) error {
	return g.own.update(func(list []owned) ([]owned, bool, error) {
		out := slices.DeleteFunc(list, func(e owned) bool { return e.Name == name })
		return out, true, nil
	})
}

// ownedList is the record, pruned of VMs that are gone.
func (g *guard) ownedList(vms []api.VM) ([]owned, error) {
	var out []owned
	err := g.own.update(func(list []owned) ([]owned, bool, error) {
		out = live(list, vms, g.now())
		return out, len(out) != len(list), nil
	})
	return out, err
}

// check refuses vm unless the scope may use it, and says whether the
// scope owns it; mutate marks calls that remove the VM (delete), which
// need ownership even with AllVMs.
func (g *guard) check(vm api.VM, vms []api.VM, mutate bool) (bool, error) {
	list, err := g.ownedList(vms)
	if err != nil {
		return false, err
	}
	if owns(list, vm) {
		return true, nil
	}
	if g.scope.AllVMs && !mutate {
		return false, nil
	}
	return false, errdefs.Invalid("vm %q was not created by this MCP server (scope %q), so it may not touch it; create a VM with vm_create and use that one",
		vm.Name, g.scope.Name)
}

func names(list []owned) string {
	var n []string
	for _, e := range list {
		n = append(n, e.Name)
	}
	return strings.Join(n, ", ")
}

// vmForUse finds name on the daemon, checks the scope allows it and says
// whether the scope owns it.
func (s *Server) vmForUse(ctx context.Context, name string, mutate bool) (api.VM, bool, error) {
	if name == "" {
		return api.VM{}, false, errdefs.Invalid("name the VM (the \"vm\" argument); vm_list shows yours")
	}
	vms, err := s.cl.VMs(ctx)
	if err != nil {
		return api.VM{}, false, err
	}
	for _, v := range vms {
		if v.Name == name {
			owned, err := s.guard.check(v, vms, mutate)
			return v, owned, err
		}
	}
	return api.VM{}, false, errdefs.NotFound("vm %q not found; vm_list shows the VMs this MCP server may use", name)
}
