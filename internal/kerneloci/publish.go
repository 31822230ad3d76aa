package kerneloci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"banger/api/errdefs"
	"banger/internal/imagepull"
	"banger/internal/progress"
)

// Files are what Publish pushes: Kernel is required; Modules is a
// directory (the modules tree a pulled kernel keeps); Fragment is a kernel
// config fragment.
type Files struct {
	Kernel, Initrd, Modules, Fragment string
}

// Publish pushes the kernel as an artifact to ref and returns the
// reference by digest. p hears which file is being pushed.
func Publish(ctx context.Context, meta Metadata, files Files, ref string, opts Options, p progress.Func) (string, error) {
	if files.Kernel == "" {
		return "", errNoKernel
	}
	if meta.Arch == "" {
		meta.Arch = hostArch()
	}
	r, err := imagepull.ParseRef(ref, opts.Insecure)
	if err != nil {
		return "", err
	}
	var layers []v1.Layer
	for _, f := range []struct {
		path string
		mt   types.MediaType
	}{{files.Kernel, VmlinuxType}, {files.Initrd, InitrdType}, {files.Fragment, FragmentType}} {
		if f.path == "" {
			continue
		}
		l, err := newFileLayer(f.path, f.mt)
		if err != nil {
			return "", err
		}
		layers = append(layers, l)
	}
	if files.Modules != "" {
		tmp, err := os.CreateTemp("", "banger-modules-*.tar.gz")
		if err != nil {
			return "", err
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		p.Step("modules", "packing kernel modules from "+files.Modules)
		if err := tarDir(tmp, files.Modules); err != nil {
			return "", fmt.Errorf("packing kernel modules %s: %w", files.Modules, err)
		}
		l, err := newFileLayer(tmp.Name(), ModulesType)
		if err != nil {
			return "", err
		}
		layers = append(layers, l)
	}
	cfg, err := json.Marshal(meta)
	if err != nil {
		return "", err
	}
	config := static.NewLayer(cfg, ConfigType)
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  ArtifactType,
		Annotations: map[string]string{
			"org.opencontainers.image.title":   meta.Name,
			"org.opencontainers.image.version": meta.Version,
		},
	}
	if m.Config, err = describe(config); err != nil {
		return "", err
	}
	ro := opts.remote(ctx)
	for _, l := range append([]v1.Layer{config}, layers...) {
		d, err := describe(l)
		if err != nil {
			return "", err
		}
		if l != config {
			m.Layers = append(m.Layers, d)
			p.Step("push", fmt.Sprintf("pushing %s (%d bytes)", d.MediaType, d.Size))
		}
		if err := remote.WriteLayer(r.Context(), l, ro...); err != nil {
			return "", imagepull.RegistryError(r, err)
		}
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	if err := remote.Put(r, rawManifest(raw), ro...); err != nil {
		return "", imagepull.RegistryError(r, err)
	}
	h, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return "", err
	}
	return r.Context().Digest(h.String()).String(), nil
}

// rawManifest is a manifest pushed as it is.
type rawManifest []byte

func (m rawManifest) RawManifest() ([]byte, error)        { return m, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

func describe(l v1.Layer) (v1.Descriptor, error) {
	d, err := l.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	n, err := l.Size()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := l.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Size: n, Digest: d}, nil
}

// fileLayer is a file pushed as one blob, read from disk when pushed.
type fileLayer struct {
	path   string
	mt     types.MediaType
	digest v1.Hash
	size   int64
}

func newFileLayer(path string, mt types.MediaType) (*fileLayer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, errdefs.Invalid("reading %s: %v", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errdefs.Invalid("%s is not a regular file", path)
	}
	h, n, err := v1.SHA256(f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return &fileLayer{path: path, mt: mt, digest: h, size: n}, nil
}

func (l *fileLayer) Digest() (v1.Hash, error)             { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)             { return l.digest, nil }
func (l *fileLayer) Size() (int64, error)                 { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error)  { return l.mt, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)   { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) { return os.Open(l.path) }

// tarDir writes dir's tree (directories, regular files, symlinks) as a
// gzip-compressed tar with names relative to dir, in a stable order.
func tarDir(w io.Writer, dir string) error {
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		case fi.IsDir(), fi.Mode().IsRegular():
		default:
			return fmt.Errorf("%s is neither a file, a directory nor a symlink", path)
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name, hdr.Uname, hdr.Gname, hdr.Uid, hdr.Gid = filepath.ToSlash(rel), "", "", 0, 0
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = zw.Close()
	}
	return err
}
