//go:build e2e

package e2e

import (
	"runtime"

	"github.com/vishvananda/netns"
)

func netnsHandle(name string) (netns.NsHandle, error) { return netns.GetFromName(name) }

// inNetns runs fn on a thread inside ns; the thread is discarded after.
func inNetns(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}
