package testutil

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// NetNS is a named network namespace a test created; t.Cleanup removes it,
// and with it every interface, address and nftables table made inside.
type NetNS struct {
	Name   string
	Handle netns.NsHandle
}

var nsSeq atomic.Int64

// NewNetNS creates a fresh named network namespace (visible to 'ip netns'
// as Name while the test runs) with its loopback up, and removes it when
// the test ends. It needs root; call RequiresRoot first.
func NewNetNS(t testing.TB) *NetNS {
	t.Helper()
	name := fmt.Sprintf("banger-test-%d-%d", os.Getpid(), nsSeq.Add(1))
	h, err := onFreshThread(func() (netns.NsHandle, error) {
		// NewNamed moves the calling thread into the new namespace; the
		// thread is thrown away afterwards, never reused.
		return netns.NewNamed(name)
	})
	if err != nil {
		t.Fatalf("creating network namespace %s: %v", name, err)
	}
	ns := &NetNS{Name: name, Handle: h}
	t.Cleanup(func() {
		h.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("removing network namespace %s: %v", name, err)
		}
	})
	if err := ns.Do(func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	}); err != nil {
		t.Fatalf("bringing up lo in %s: %v", name, err)
	}
	return ns
}

// Do runs fn on an OS thread that is inside ns, and returns fn's error.
// The thread is discarded when fn returns, so the namespace never leaks
// into other goroutines. Goroutines fn starts run in the caller's
// namespace, not ns; sockets fn opens stay in ns wherever they are used.
func (ns *NetNS) Do(fn func() error) error {
	_, err := onFreshThread(func() (struct{}, error) {
		root, err := netns.Get()
		if err != nil {
			return struct{}{}, err
		}
		defer root.Close()
		if err := netns.Set(ns.Handle); err != nil {
			return struct{}{}, fmt.Errorf("entering network namespace %s: %w", ns.Name, err)
		}
		cur, err := netns.Get()
		if err != nil {
			return struct{}{}, err
		}
		defer cur.Close()
		if !cur.Equal(ns.Handle) || cur.Equal(root) {
			return struct{}{}, errors.New("thread did not enter the test network namespace; refusing to run")
		}
		return struct{}{}, fn()
	})
	return err
}

// onFreshThread runs fn on a goroutine locked to its OS thread and never
// unlocked: when the goroutine exits the runtime terminates the thread,
// whatever namespace fn left it in.
func onFreshThread[T any](fn func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		v, err := fn()
		ch <- result{v, err}
	}()
	r := <-ch
	return r.v, r.err
}
