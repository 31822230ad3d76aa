package images

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"banger/api"
	"banger/internal/bytesize"
	"banger/internal/debianfs"
	"banger/internal/imagebuild"
	"banger/internal/imagepull"
	"banger/internal/progress"
)

// pruneRetry is how often a waiting prune tries the cache lock again.
const pruneRetry = 100 * time.Millisecond

// PruneImages gives back the disk space the caches hold for images that
// are gone: OCI blobs no registered image's manifest uses (pulled images
// record their manifest digest; built, registered and debootstrapped ones
// have their own files and use no blob), build steps cached by builds of
// images that are not registered (deleted, or never built successfully),
// and what interrupted pulls, builds and default root filesystem builds
// left.
//
// A pull writes its blobs before it registers its image, and a build's
// steps belong to an image registered only at its end, so a prune waits
// until no pull, build or default-image creation is running, and none
// starts until it is done (cacheMu). What cannot be removed is reported
// in Warnings; the other caches are pruned all the same.
func (s *Service) PruneImages(ctx context.Context) (api.PruneReport, error) {
	if err := s.lockCaches(ctx); err != nil {
		return api.PruneReport{}, err
	}
	defer s.cacheMu.Unlock()
	ims, err := s.store.Images(ctx)
	if err != nil {
		return api.PruneReport{}, err
	}
	keep, live := map[string]bool{}, map[string]bool{}
	for _, im := range ims {
		live[im.Name] = true
		if im.Digest != "" {
			keep[im.Digest] = true
		}
	}

	var rep api.PruneReport
	warn := func(what string, err error) {
		s.log.Warn("pruning the image caches", "cache", what, "err", err)
		var joined interface{ Unwrap() []error }
		if !errors.As(err, &joined) {
			rep.Warnings = append(rep.Warnings, what+": "+err.Error())
			return
		}
		for _, e := range joined.Unwrap() {
			rep.Warnings = append(rep.Warnings, what+": "+e.Error())
		}
	}
	if c, err := imagepull.OpenCache(s.layout.OCICacheDir); err != nil {
		warn("oci cache", err)
	} else {
		r, err := c.Prune(keep)
		if err != nil {
			warn("oci cache", err)
		}
		rep.OCIBlobs, rep.OCIBytes = r.Blobs, r.BlobBytes
		rep.Leftovers, rep.LeftoverBytes = r.Temps, r.TempBytes
	}
	r, err := s.BuildCache().PruneOrphans(live)
	if err != nil {
		warn("build cache", err)
	}
	rep.BuildSteps, rep.BuildBytes = r.Entries, r.EntryBytes
	rep.Leftovers, rep.LeftoverBytes = rep.Leftovers+r.Temps, rep.LeftoverBytes+r.TempBytes
	n, size, err := debianfs.RemoveStale(debianfs.PreparedDir(s.layout.CacheDir))
	if err != nil {
		warn("default root filesystem", err)
	}
	rep.Leftovers, rep.LeftoverBytes = rep.Leftovers+n, rep.LeftoverBytes+size

	s.events.Event(ctx, "info", "cache", fmt.Sprintf("pruned %d blobs, %d build steps and %d leftovers of interrupted operations: %s freed",
		rep.OCIBlobs, rep.BuildSteps, rep.Leftovers, bytesize.Format(rep.OCIBytes+rep.BuildBytes+rep.LeftoverBytes)))
	return rep, nil
}

// lockCaches takes cacheMu for writing once the pulls, builds and
// default-image creations in progress are done, or fails when ctx ends
// first. It polls instead of calling Lock: a writer blocked in Lock would
// hold up every new pull and build until the slowest one in progress
// ended, and could not give up when its client goes away.
func (s *Service) lockCaches(ctx context.Context) error {
	if s.cacheMu.TryLock() {
		return nil
	}
	s.log.Info("image prune waiting for pulls and builds in progress")
	t := time.NewTicker(pruneRetry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if s.cacheMu.TryLock() {
				return nil
			}
		}
	}
}

// HoldCaches is useCaches for the default image, which pulls and builds
// with PullHeld and BuildHeld under one hold.
func (s *Service) HoldCaches(p progress.Func) (release func()) { return s.useCaches(p) }

// useCaches holds cacheMu for reading for a pull, a build or a default
// image; the caller defers the returned release. Only the outermost
// operation takes it (the default image's pull and build do not): read
// locks of a sync.RWMutex must not be taken recursively.
func (s *Service) useCaches(p progress.Func) (release func()) {
	if !s.cacheMu.TryRLock() {
		p.Step("wait", "waiting for 'banger image prune' to finish")
		s.cacheMu.RLock()
	}
	return s.cacheMu.RUnlock
}

// BuildCache is where image builds cache their steps.
func (s *Service) BuildCache() imagebuild.Cache {
	return imagebuild.Cache{Dir: filepath.Join(s.layout.CacheDir, "build")}
}
