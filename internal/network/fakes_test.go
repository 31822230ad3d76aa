package network

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
)

// fakeLinks is an in-memory Links that counts mutations.
type fakeLinks struct {
	mu      sync.Mutex
	links   map[string]*LinkInfo
	changes int
}

func newFakeLinks() *fakeLinks { return &fakeLinks{links: map[string]*LinkInfo{}} }

func (f *fakeLinks) get(name string) (*LinkInfo, error) {
	l, ok := f.links[name]
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, ErrLinkNotFound)
	}
	return l, nil
}

func (f *fakeLinks) Link(name string) (LinkInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.get(name)
	if err != nil {
		return LinkInfo{}, err
	}
	return clone(*l), nil
}

func clone(l LinkInfo) LinkInfo {
	l.Addrs = slices.Clone(l.Addrs)
	if l.Tap != nil {
		t := *l.Tap
		l.Tap = &t
	}
	return l
}

func (f *fakeLinks) Links() ([]LinkInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []LinkInfo
	for _, name := range slices.Sorted(maps.Keys(f.links)) {
		out = append(out, clone(*f.links[name]))
	}
	return out, nil
}

func (f *fakeLinks) add(l LinkInfo) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.links[l.Name]; ok {
		return fmt.Errorf("%s exists", l.Name)
	}
	f.links[l.Name] = &l
	f.changes++
	return nil
}

func (f *fakeLinks) AddBridge(name string, mac net.HardwareAddr) error {
	return f.add(LinkInfo{Name: name, Kind: "bridge", MAC: mac})
}

func (f *fakeLinks) AddTap(name string, uid, gid int) error {
	return f.add(LinkInfo{Name: name, Kind: "tun", Tap: &TapInfo{TAP: true, Persistent: true, Owner: uid, Group: gid}})
}

func (f *fakeLinks) change(name string, fn func(l *LinkInfo) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.get(name)
	if err != nil {
		return err
	}
	f.changes++
	return fn(l)
}

func (f *fakeLinks) Delete(name string) error {
	return f.change(name, func(*LinkInfo) error {
		delete(f.links, name)
		for _, l := range f.links {
			if l.Master == name {
				l.Master = ""
			}
		}
		return nil
	})
}

func (f *fakeLinks) SetAlias(name, alias string) error {
	return f.change(name, func(l *LinkInfo) error { l.Alias = alias; return nil })
}

func (f *fakeLinks) SetMaster(name, master string) error {
	if _, err := f.Link(master); err != nil {
		return err
	}
	return f.change(name, func(l *LinkInfo) error { l.Master = master; return nil })
}

func (f *fakeLinks) SetUp(name string) error {
	return f.change(name, func(l *LinkInfo) error { l.Up = true; return nil })
}

func (f *fakeLinks) AddAddr(name string, p netip.Prefix) error {
	return f.change(name, func(l *LinkInfo) error { l.Addrs = append(l.Addrs, p); return nil })
}

func (f *fakeLinks) DelAddr(name string, p netip.Prefix) error {
	return f.change(name, func(l *LinkInfo) error {
		l.Addrs = slices.DeleteFunc(l.Addrs, func(a netip.Prefix) bool { return a == p })
		return nil
	})
}

// fakeFirewall holds the spec its table was last written with.
type fakeFirewall struct {
	table   *FirewallSpec
	applies int
	denied  bool // reading needs root
}

func (f *fakeFirewall) Check(want FirewallSpec) (bool, string, error) {
	switch {
	case f.denied:
		return false, "", fmt.Errorf("listing nftables tables: %w", os.ErrPermission)
	case f.table == nil:
		return false, "", nil
	case *f.table != want:
		return true, "rules differ", nil
	}
	return true, "", nil
}

func (f *fakeFirewall) Apply(want FirewallSpec) error { f.table = &want; f.applies++; return nil }

func (f *fakeFirewall) Remove() (bool, error) {
	had := f.table != nil
	f.table = nil
	return had, nil
}

type fakeSysctl struct {
	vals map[string]string
	sets int
}

func (f *fakeSysctl) Get(key string) (string, error) { return f.vals[key], nil }
func (f *fakeSysctl) Set(key, v string) error        { f.vals[key] = v; f.sets++; return nil }

type fakeResolved struct {
	available bool
	links     map[string]string // link -> "server ~domain"
	calls     int
}

func (f *fakeResolved) Available() bool { return f.available }
func (f *fakeResolved) Check(link string, server netip.Addr, domain string) (bool, error) {
	return f.links[link] == server.String()+" ~"+domain, nil
}
func (f *fakeResolved) Configure(link string, server netip.Addr, domain string) error {
	f.links[link] = server.String() + " ~" + domain
	f.calls++
	return nil
}
func (f *fakeResolved) Revert(link string) error { delete(f.links, link); f.calls++; return nil }

type fakeUnits struct {
	available bool
	units     map[string]string
	installs  int
	restarts  map[string]int
}

func (f *fakeUnits) Restart(name string) error {
	if f.restarts == nil {
		f.restarts = map[string]int{}
	}
	f.restarts[name]++
	return nil
}

func (f *fakeUnits) Available() bool { return f.available }
func (f *fakeUnits) Check(name, content string) (bool, error) {
	return f.units[name] == content, nil
}
func (f *fakeUnits) Install(name, content string) error {
	f.units[name] = content
	f.installs++
	return nil
}
func (f *fakeUnits) Remove(name string) (bool, error) {
	_, ok := f.units[name]
	delete(f.units, name)
	return ok, nil
}
