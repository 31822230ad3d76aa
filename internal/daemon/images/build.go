package images

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/agentproto"
	"banger/internal/disk"
	"banger/internal/ext4"
	"banger/internal/fsutil"
	"banger/internal/image"
	"banger/internal/imagebuild"
	"banger/internal/progress"
)

// buildHeadroom is what a build adds to the base rootfs by default.
const buildHeadroom = 2 << 30

// BuilderMarker names, in a build's staging directory, the builder VM
// of the step in progress.
const BuilderMarker = "builder-vm"

// workSeedHeadroom is left free in a built work-seed.
const workSeedHeadroom = 64 << 20

// BuildImage makes image req.Name from image req.From by running the
// build's steps (the devbox set, then the user's scripts) in builder VMs,
// one VM per step, each starting from the disks the previous step left.
// Each step's disks are cached by content key, so a rebuild starts from
// the last unchanged step. The base is only read; a failed or cancelled
// build leaves no image, no builder VM and no staging files (the steps
// that succeeded stay cached).
func (s *Service) BuildImage(ctx context.Context, req api.BuildImageRequest, p progress.Func) (api.ImageBuild, error) {
	defer s.useCaches(p)()
	return s.buildImage(ctx, req, p)
}

// BuildHeld is BuildImage for a caller that holds the caches (HoldCaches).
func (s *Service) BuildHeld(ctx context.Context, req api.BuildImageRequest, p progress.Func) (api.ImageBuild, error) {
	return s.buildImage(ctx, req, p)
}

// buildImage is BuildImage for a caller that holds the caches (useCaches).
func (s *Service) buildImage(ctx context.Context, req api.BuildImageRequest, p progress.Func) (api.ImageBuild, error) {
	t0 := time.Now()
	if err := image.ValidateName("image", req.Name); err != nil {
		return api.ImageBuild{}, err
	}
	if req.From == "" {
		return api.ImageBuild{}, errdefs.Invalid("--from-image is required: name the registered image to build from (see 'banger image list')")
	}
	release, err := s.claim("image/"+req.Name, "build")
	if err != nil {
		return api.ImageBuild{}, err
	}
	defer release()
	if _, err := s.Image(ctx, req.Name); err == nil {
		return api.ImageBuild{}, errdefs.Conflict("image %q already exists; pick another --name or delete it with 'banger image delete %s'", req.Name, req.Name)
	}
	base, err := s.Bootable(ctx, req.From)
	if err != nil {
		return api.ImageBuild{}, fmt.Errorf("--from-image: %w", err)
	}
	steps, err := buildSteps(req)
	if err != nil {
		return api.ImageBuild{}, err
	}
	size := req.Size
	baseSize := image.ApparentSize(base.Rootfs)
	if size == 0 {
		size = baseSize + buildHeadroom
	}
	if size < baseSize {
		return api.ImageBuild{}, errdefs.Invalid("--size is smaller than the base image's rootfs (%d bytes); pass at least that", baseSize)
	}
	baseKey, err := imagebuild.Base{Image: base.Name, Rootfs: base.Rootfs, WorkSeed: base.WorkSeed, Kernel: base.Kernel, Size: size}.Key()
	if err != nil {
		return api.ImageBuild{}, err
	}
	keys, err := imagebuild.Keys(baseKey, steps)
	if err != nil {
		return api.ImageBuild{}, errdefs.Invalid("%v", err)
	}
	cache := s.BuildCache()
	start := 0
	if !req.NoCache {
		start = cache.Longest(keys)
	}

	// The build's working disks live in a staging directory that the
	// daemon sweeps at start should it die mid-build.
	work := filepath.Join(s.layout.ImagesDir, ".staging-build-"+req.Name+"-"+fsutil.RandomHex())
	if err := os.MkdirAll(work, 0o700); err != nil {
		return api.ImageBuild{}, fmt.Errorf("creating build directory: %w", err)
	}
	defer os.RemoveAll(work)
	if err := s.startBuild(ctx, base, size, work, cache, keys, start, p); err != nil {
		return api.ImageBuild{}, err
	}

	out := api.ImageBuild{From: base.Name}
	for i := 0; i < start; i++ {
		out.Steps = append(out.Steps, api.BuildStep{Name: steps[i].Name, Key: keys[i], Cached: true})
		p.Step("cached", fmt.Sprintf("step %d/%d %s: cached", i+1, len(steps), steps[i].Name))
	}
	for i := start; i < len(steps); i++ {
		ts := time.Now()
		p.Step("step", fmt.Sprintf("step %d/%d %s", i+1, len(steps), steps[i].Name))
		if err := s.runBuildStep(ctx, req, base, work, steps[i], p); err != nil {
			return api.ImageBuild{}, fmt.Errorf("building image %q: step %s failed: %w (no image was made; the steps before it are cached)", req.Name, steps[i].Name, err)
		}
		if !req.NoCache {
			e := imagebuild.Entry{Key: keys[i], Image: req.Name, Step: steps[i].Name, Created: time.Now().UTC()}
			if err := cache.Store(ctx, work, e); err != nil {
				s.log.Warn("caching build step", "image", req.Name, "step", steps[i].Name, "err", err)
			}
		}
		out.Steps = append(out.Steps, api.BuildStep{Name: steps[i].Name, Key: keys[i], Duration: time.Since(ts)})
	}

	im := api.Image{
		Name: req.Name, Rootfs: filepath.Join(work, imagebuild.RootfsFile), WorkSeed: filepath.Join(work, imagebuild.WorkSeedFile),
		Kernel: base.Kernel, Initrd: base.Initrd, Modules: base.Modules, KernelRef: base.KernelRef, Source: "build",
	}
	if _, err := os.Stat(im.WorkSeed); err != nil {
		im.WorkSeed = base.WorkSeed
	} else if err := ext4.Shrink(ctx, im.WorkSeed, workSeedHeadroom); err != nil {
		// As small as its content: each VM grows it to its --disk-size.
		return api.ImageBuild{}, fmt.Errorf("shrinking the work-seed: %w", err)
	}
	stored, err := s.storeImage(ctx, im, p)
	if err != nil {
		return api.ImageBuild{}, err
	}
	if n, err := cache.Prune(req.Name, keys); err != nil {
		s.log.Warn("pruning the build cache", "err", err)
	} else if n > 0 {
		s.log.Info("pruned build cache", "image", req.Name, "entries", n)
	}
	out.Image, out.Duration = stored, time.Since(t0)
	s.events.Event(ctx, "info", "image/"+req.Name, fmt.Sprintf("image %s built from %s (%d steps, %d cached) in %s",
		req.Name, base.Name, len(steps), start, out.Duration.Round(time.Second)))
	return out, nil
}

// buildSteps is the devbox set (unless left out), then one step per
// script.
func buildSteps(req api.BuildImageRequest) ([]imagebuild.Step, error) {
	var steps []imagebuild.Step
	if !req.NoDevbox {
		steps = imagebuild.DevboxSteps(req.Docker)
	} else if req.Docker {
		return nil, errdefs.Invalid("--docker is part of the devbox set; drop --no-devbox or --docker")
	}
	for _, f := range req.Files {
		if !filepath.IsAbs(f) {
			return nil, errdefs.Invalid("--file %q must be an absolute path", f)
		}
		if fi, err := os.Stat(f); err != nil || !fi.Mode().IsRegular() {
			return nil, errdefs.Invalid("--file %s is not a readable regular file", f)
		}
	}
	for _, s := range req.Scripts {
		if !filepath.IsAbs(s) {
			return nil, errdefs.Invalid("--script %q must be an absolute path", s)
		}
		st, err := imagebuild.ScriptStep(s, req.Files)
		if err != nil {
			return nil, errdefs.Invalid("%v", err)
		}
		steps = append(steps, st)
	}
	if len(steps) == 0 {
		return nil, errdefs.Invalid("nothing to build: pass --script FILE, or drop --no-devbox")
	}
	return steps, nil
}

// startBuild fills work with the build's starting disks: the last cached
// step's, or the base's rootfs grown to size.
func (s *Service) startBuild(ctx context.Context, base api.Image, size int64, work string, cache imagebuild.Cache, keys []string, start int, p progress.Func) error {
	if start > 0 {
		p.Step("cached", fmt.Sprintf("starting from the cached result of step %d", start))
		for _, name := range []string{imagebuild.RootfsFile, imagebuild.WorkSeedFile} {
			if _, err := disk.Copy(ctx, filepath.Join(cache.Path(keys[start-1]), name), filepath.Join(work, name)); err != nil {
				return fmt.Errorf("reading the build cache: %w", err)
			}
		}
		return nil
	}
	root := filepath.Join(work, imagebuild.RootfsFile)
	total, err := disk.DataSize(base.Rootfs)
	if err != nil {
		return fmt.Errorf("sizing base rootfs: %w", err)
	}
	c := progress.NewCounter(p, "copy", "rootfs", total)
	if _, err := disk.Copy(ctx, base.Rootfs, root, disk.WithProgress(c)); err != nil {
		return fmt.Errorf("copying the base rootfs: %w", err)
	}
	c.Done()
	if err := ext4.Grow(ctx, root, size); err != nil {
		return err
	}
	if base.WorkSeed != "" {
		if _, err := disk.Copy(ctx, base.WorkSeed, filepath.Join(work, imagebuild.WorkSeedFile)); err != nil {
			return fmt.Errorf("copying the base work-seed: %w", err)
		}
	}
	return nil
}

// runBuildStep boots a builder VM from the disks in work, runs the step
// and the cleanup script, shuts the VM down cleanly and moves its disks
// back into work. The VM is gone when it returns, whatever happened.
func (s *Service) runBuildStep(ctx context.Context, req api.BuildImageRequest, base api.Image, work string, step imagebuild.Step, p progress.Func) (err error) {
	from := base
	from.Rootfs = filepath.Join(work, imagebuild.RootfsFile)
	if _, err := os.Stat(filepath.Join(work, imagebuild.WorkSeedFile)); err == nil {
		from.WorkSeed = filepath.Join(work, imagebuild.WorkSeedFile)
	}
	name := "build-" + fsutil.RandomHex()
	// Should the daemon die mid-step, its next start finds the builder
	// here and removes it (sweepBuilders).
	marker := filepath.Join(work, BuilderMarker)
	if err := os.WriteFile(marker, []byte(name+"\n"), 0o600); err != nil {
		return err
	}
	defer os.Remove(marker)
	b, err := s.vms.BootBuilder(ctx, name, from, p)
	if err != nil {
		return err
	}
	defer b.Remove()
	cl := b.Agent()
	if err := uploadStep(ctx, cl, step); err != nil {
		return err
	}
	env := append(imagebuild.StepEnv(req.Name, req.BestEffort), imagebuild.ProxyEnv(os.Getenv, s.cfg.BridgeIP)...)
	lw := progress.NewLineWriter(p, "log")
	st, err := cl.Run(ctx, agentproto.ExecRequest{Argv: []string{"/bin/sh", "-e", "./step.sh"}, Dir: imagebuild.GuestDir, Env: env},
		agentproto.Stdio{Stdout: lw, Stderr: lw})
	lw.Flush()
	if err != nil {
		return fmt.Errorf("running the step: %w", err)
	}
	if !st.Success() {
		return fmt.Errorf("the script %s; its last lines:\n%s", st, lw.Tail())
	}
	if _, err := cl.Output(ctx, []string{"/bin/sh", "-c", string(imagebuild.CleanupScript())}, nil); err != nil {
		return fmt.Errorf("cleaning up after the step: %w", err)
	}
	p.Step("shutdown", "shutting the builder vm down")
	rootfs, workDisk, err := b.Shutdown(ctx)
	if err != nil {
		return err
	}
	for src, buildFile := range map[string]string{rootfs: imagebuild.RootfsFile, workDisk: imagebuild.WorkSeedFile} {
		dst := filepath.Join(work, buildFile)
		if err := ext4.Check(ctx, src); err != nil {
			return fmt.Errorf("the builder vm left a damaged %s: %w", filepath.Base(src), err)
		}
		if err := os.Rename(src, dst); err != nil {
			if _, cerr := disk.Copy(ctx, src, dst); cerr != nil {
				return fmt.Errorf("keeping the step's %s: %w", filepath.Base(src), errors.Join(err, cerr))
			}
		}
	}
	return nil
}

// uploadStep puts the step's script (step.sh) and files into GuestDir.
func uploadStep(ctx context.Context, cl *agentproto.Client, step imagebuild.Step) error {
	pr, pw := io.Pipe()
	var writer sync.WaitGroup
	defer writer.Wait()
	writer.Go(func() {
		tw := tar.NewWriter(pw)
		err := addTarFile(tw, "step.sh", 0o755, int64(len(step.Script)), bytes.NewReader(step.Script))
		for _, f := range step.Files {
			if err != nil {
				break
			}
			err = addHostFile(tw, f)
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	})
	if _, err := cl.CopyIn(ctx, imagebuild.GuestDir, pr); err != nil {
		pr.CloseWithError(err)
		return fmt.Errorf("uploading the step: %w", err)
	}
	return nil
}

func addHostFile(tw *tar.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("reading --file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	return addTarFile(tw, filepath.Base(path), int64(fi.Mode().Perm()), fi.Size(), f)
}

func addTarFile(tw *tar.Writer, name string, mode, size int64, r io.Reader) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: size, ModTime: time.Now(), Uname: "root", Gname: "root"}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := io.CopyN(tw, r, size)
	return err
}

// sweepBuilders runs at start, before the staging directories are swept:
// builder VMs of builds the daemon was running when it died are killed
// and removed, as the build would have done.
func (s *Service) sweepBuilders(ctx context.Context) {
	markers, _ := filepath.Glob(filepath.Join(s.layout.ImagesDir, ".staging-build-*", BuilderMarker))
	for _, m := range markers {
		b, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		name := strings.TrimSpace(string(b))
		if err := s.vms.Discard(ctx, name); err != nil {
			continue
		}
		s.log.Warn("removed the builder vm of an interrupted image build", "vm", name)
		s.events.Event(ctx, "warn", "vm/"+name, "builder vm "+name+" of an image build interrupted by a daemon stop was removed")
	}
}
