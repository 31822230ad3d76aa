// Package imagebuild describes image builds: the provisioning steps a
// builder VM runs, the content keys that identify each step's result, and
// the on-disk cache of those results. The daemon drives the builder VMs;
// this package knows nothing about VMs.
//
// A build is a chain: the base image, then each step in order. Step i's key
// hashes step i-1's key with step i's name, script and input files, so a
// change to one step changes its key and every later one, and a rebuild
// reruns from the first changed step.
package imagebuild

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Step is one provisioning step: a shell script run as root in the
// builder VM, with Files placed next to it.
type Step struct {
	Name   string
	Script []byte
	// Files are host files copied into the step's directory in the guest
	// (GuestDir) before the script runs, by base name.
	Files []string
}

// GuestDir is where a step's script and files are placed in the builder
// VM, and the script's working directory. It is removed after the step,
// so nothing of it stays in the image.
const GuestDir = "/var/tmp/banger-build"

// StepEnv is the environment a step's script runs with, wherever it runs
// (a builder VM, or chrooted for the default image). With bestEffort the
// devbox steps turn failed downloads into warnings.
func StepEnv(image string, bestEffort bool) []string {
	env := []string{"BANGER_BUILD=1", "DEBIAN_FRONTEND=noninteractive", "BANGER_IMAGE=" + image}
	if bestEffort {
		env = append(env, "BANGER_BEST_EFFORT=1")
	}
	return env
}

// Base identifies a build's starting point: the base image's files and
// the rootfs size the build grows it to.
type Base struct {
	Image    string // image name, for messages
	Rootfs   string
	WorkSeed string
	Kernel   string
	Size     int64 // rootfs size of the build
}

// Key is the content key of the base: its files' paths, sizes and
// modification times (images are never modified in place, so these change
// whenever the content does) and the build size.
func (b Base) Key() (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "banger-build-base-v1\x00%d\x00", b.Size)
	for _, p := range []string{b.Rootfs, b.WorkSeed, b.Kernel} {
		if p == "" {
			fmt.Fprint(h, "-\x00")
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("reading base image %q: %w", b.Image, err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", p, fi.Size(), fi.ModTime().UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Keys returns the key of each step given the base key.
func Keys(base string, steps []Step) ([]string, error) {
	keys := make([]string, len(steps))
	prev := base
	sums := map[string]string{} // every script step gets the same files: read each once
	for i, s := range steps {
		h := sha256.New()
		fmt.Fprintf(h, "banger-build-step-v1\x00%s\x00%s\x00%d\x00", prev, s.Name, len(s.Script))
		h.Write(s.Script)
		for _, f := range s.Files {
			sum, ok := sums[f]
			if !ok {
				var err error
				if sum, err = fileSum(f); err != nil {
					return nil, fmt.Errorf("step %s: %w", s.Name, err)
				}
				sums[f] = sum
			}
			fmt.Fprintf(h, "file\x00%s\x00%s\x00", filepath.Base(f), sum)
		}
		keys[i] = hex.EncodeToString(h.Sum(nil))
		prev = keys[i]
	}
	return keys, nil
}

// fileSum is the hex SHA-256 of a file's content.
func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("reading build file: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading build file %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
