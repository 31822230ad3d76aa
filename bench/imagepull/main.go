// Command imagepull benchmarks banger's OCI-to-ext4 pipeline against the
// classic one, on the same image from the same loopback registry:
//
//	banger:   imagepull Resolve + Fetch + Build (cold cache), ready to boot
//	baseline: export the flattened tar (mutate.Extract) | tar -x into a
//	          directory, then mkfs.ext4 -d of that directory at the same size;
//	          once into the scratch directory (the disk banger builds on)
//	          and once into /dev/shm, the baseline's best case
//	re-pull:  resolving the tag again and finding the digest already built
//
// The image is synthetic and deterministic: -mib MiB of files (text and
// binary-like data, about 2x compressible) in four layers, with
// overwrites, whiteouts, an opaque directory, hardlinks and symlinks.
// Run as root so tar keeps ownership, as a fair baseline must:
//
//	go run ./bench/imagepull -mib 300 -runs 3
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"banger/api"
	"banger/internal/imagepull"
	"banger/internal/progress"
)

func main() {
	mib := flag.Int("mib", 300, "approximate image size in MiB (uncompressed)")
	runs := flag.Int("runs", 3, "runs of each pipeline; medians are reported")
	work := flag.String("dir", "", "scratch directory (default: a temp dir, removed)")
	flag.BoolVar(&verbose, "v", false, "print banger's steps with timestamps")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of banger's runs to this file")
	flag.Parse()
	log.SetFlags(0)
	if err := run(*mib, *runs, *work); err != nil {
		log.Fatal(err)
	}
}

func run(mib, runs int, work string) error {
	for _, tool := range []string{"tar", "mkfs.ext4", "e2fsck"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: %w", tool, err)
		}
	}
	if work == "" {
		d, err := os.MkdirTemp("", "banger-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		work = d
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/bench/image:latest"

	log.Printf("building a %d MiB image in 4 layers ...", mib)
	img, stats, err := syntheticImage(int64(mib) << 20)
	if err != nil {
		return err
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	if err := remote.Write(r, img); err != nil {
		return fmt.Errorf("pushing: %w", err)
	}
	log.Printf("image: %s", stats)

	var ours, base, shm, again []time.Duration
	var size int64
	for i := range runs {
		dir := filepath.Join(work, fmt.Sprint(i))
		syscall.Sync() // start each pipeline without the previous one's dirty pages
		d, s, err := timeBanger(ref, dir)
		if err != nil {
			return fmt.Errorf("banger run %d: %w", i, err)
		}
		size = s
		ours = append(ours, d)
		t, err := timeRepull(ref, filepath.Join(dir, "cache"))
		if err != nil {
			return err
		}
		again = append(again, t)
		syscall.Sync()
		b, err := timeBaseline(ref, filepath.Join(dir, "root"), dir, size)
		if err != nil {
			return fmt.Errorf("baseline run %d: %w", i, err)
		}
		base = append(base, b)
		// The baseline's weak spot is creating files on the host; give it
		// tmpfs as well, so the comparison is against its best case.
		var m time.Duration
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			syscall.Sync()
			if m, err = timeBaseline(ref, filepath.Join("/dev/shm", fmt.Sprintf("banger-bench-%d", os.Getpid())), dir, size); err != nil {
				return fmt.Errorf("tmpfs baseline run %d: %w", i, err)
			}
			shm = append(shm, m)
		}
		log.Printf("run %d: banger %v  baseline %v (tmpfs %v)  cached re-pull %v", i+1, d.Round(time.Millisecond),
			b.Round(time.Millisecond), m.Round(time.Millisecond), t.Round(time.Microsecond))
		os.RemoveAll(dir)
	}
	mo, mb, ma := median(ours), median(base), median(again)
	fmt.Printf("image             %s, rootfs %d MiB\n", stats, size>>20)
	fmt.Printf("banger pull       %v (median of %d)\n", mo.Round(time.Millisecond), runs)
	fmt.Printf("baseline          %v (export | tar -x into %s, mkfs.ext4 -d)\n", mb.Round(time.Millisecond), work)
	fmt.Printf("ratio             %.2fx (goal <= 0.70x)\n", mo.Seconds()/mb.Seconds())
	if len(shm) > 0 {
		ms := median(shm)
		fmt.Printf("baseline (tmpfs)  %v (extracting into /dev/shm)\n", ms.Round(time.Millisecond))
		fmt.Printf("ratio (tmpfs)     %.2fx\n", mo.Seconds()/ms.Seconds())
	}
	fmt.Printf("cached re-pull    %v (goal < 100ms)\n", ma.Round(time.Microsecond))
	return nil
}

// timeBanger pulls with a cold cache into dir/build, like the daemon.
func timeBanger(ref, dir string) (time.Duration, int64, error) {
	build := filepath.Join(dir, "build")
	if err := os.MkdirAll(build, 0o700); err != nil {
		return 0, 0, err
	}
	ctx := context.Background()
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return 0, 0, err
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	p, err := imagepull.New(imagepull.Options{CacheDir: filepath.Join(dir, "cache")})
	if err != nil {
		return 0, 0, err
	}
	r, err := p.Resolve(ctx, ref, imagepull.ResolveOptions{})
	if err != nil {
		return 0, 0, err
	}
	steps(start).Emit(api.Event{Message: "resolved"})
	img, err := p.Fetch(ctx, r, nil)
	if err != nil {
		return 0, 0, err
	}
	steps(start).Emit(api.Event{Message: "fetched"})
	res, err := imagepull.Build(ctx, img.Layers, imagepull.BuildOptions{Dir: build, Progress: steps(start)})
	if err != nil {
		return 0, 0, err
	}
	d := time.Since(start)
	steps(start).Emit(api.Event{Message: "done"})
	if out, err := exec.Command("e2fsck", "-fn", res.Path).CombinedOutput(); err != nil {
		return 0, 0, fmt.Errorf("banger's rootfs is not clean: %v\n%s", err, out)
	}
	return d, res.Size, os.RemoveAll(build)
}

// timeRepull is what 'banger image pull' costs when the digest is
// already built: resolve the tag, compare digests.
func timeRepull(ref, cache string) (time.Duration, error) {
	start := time.Now()
	p, err := imagepull.New(imagepull.Options{CacheDir: cache})
	if err != nil {
		return 0, err
	}
	if _, err := p.Resolve(context.Background(), ref, imagepull.ResolveOptions{}); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// timeBaseline: crane-export-like flattening piped into tar -x into
// root, then mkfs.ext4 -d of root into dir at the size banger chose.
func timeBaseline(ref, root, dir string, size int64) (time.Duration, error) {
	out := filepath.Join(dir, "baseline.ext4")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return 0, err
	}
	defer os.RemoveAll(root)
	defer os.Remove(out)
	start := time.Now()
	r, err := name.ParseReference(ref)
	if err != nil {
		return 0, err
	}
	img, err := remote.Image(r)
	if err != nil {
		return 0, err
	}
	flat := mutate.Extract(img)
	defer flat.Close()
	tar := exec.Command("tar", "-x", "-p", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", root, "-f", "-")
	tar.Stdin = flat
	if out, err := tar.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("tar -x: %v: %.2000s", err, out)
	}
	steps(start).Emit(api.Event{Message: "baseline: exported and extracted"})
	mkfs := exec.Command("mkfs.ext4", "-q", "-F", "-b", "4096", "-E", "nodiscard", "-d", root, out, fmt.Sprintf("%dK", size>>10))
	if b, err := mkfs.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("mkfs.ext4 -d: %v: %s", err, b)
	}
	d := time.Since(start)
	steps(start).Emit(api.Event{Message: "baseline: mkfs.ext4 -d done"})
	if b, err := exec.Command("e2fsck", "-fn", out).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("baseline rootfs is not clean: %v\n%s", err, b)
	}
	return d, nil
}

var (
	verbose    bool
	cpuProfile string
)

// steps prints banger's steps with the time since start when -v is set.
func steps(start time.Time) progress.Func {
	if !verbose {
		return nil
	}
	return func(ev api.Event) {
		if ev.Message != "" {
			log.Printf("  %6.2fs %s", time.Since(start).Seconds(), ev.Message)
		}
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
