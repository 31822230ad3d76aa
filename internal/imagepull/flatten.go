package imagepull

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"banger/internal/progress"
)

// flattened is an image replayed into one tree, ready to be written.
type flattened struct {
	t      *tree
	spools []*os.File
}

// flatten reads every layer once (in parallel; progress step "unpack"
// per layer), replays them oldest first and adds the extra files.
func flatten(ctx context.Context, layers []Layer, dir string, b *budget, extras []ExtraFile, prog progress.Func) (*flattened, error) {
	scans := make([]*scanned, len(layers))
	f := &flattened{t: newTree(), spools: make([]*os.File, len(layers))}
	err := forEach(ctx, len(layers), runtime.NumCPU(), func(ctx context.Context, i int) error {
		l := layers[i]
		c := progress.NewCounter(prog, "unpack", shortName(l.Digest), l.Size)
		s, err := scanLayer(ctx, l, filepath.Join(dir, fmt.Sprintf(".layer-%03d.spool", i)), b, c)
		if err != nil {
			return err
		}
		c.Done()
		scans[i], f.spools[i] = s, s.spool
		return nil
	})
	if err != nil {
		f.close()
		return nil, err
	}
	for i, s := range scans {
		if err := f.t.apply(i, s.entries, layers[i].Digest); err != nil {
			f.close()
			return nil, err
		}
		scans[i] = nil // entries are in the tree now
	}
	for i := range extras {
		if err := f.t.addExtra(&extras[i], len(layers), i); err != nil {
			f.close()
			return nil, err
		}
	}
	return f, nil
}

// close removes the spools.
func (f *flattened) close() {
	for i, s := range f.spools {
		if s != nil {
			s.Close()
			os.Remove(s.Name())
			f.spools[i] = nil
		}
	}
}

// forEach runs fn for 0..n-1 with at most jobs at once; the first error
// cancels the rest.
func forEach(ctx context.Context, n, jobs int, fn func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, max(jobs, 1))
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fn(ctx, i); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

func shortName(digest string) string {
	_, hex, _ := strings.Cut(digest, ":")
	if len(hex) > 12 {
		return hex[:12]
	}
	return hex
}
