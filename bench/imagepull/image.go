package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// syntheticImage builds four layers totalling about total bytes:
// a base system (45%), an application layer (30%), an update layer that
// overwrites, whites out and makes a directory opaque (15%), and a
// small layer of links (10%).
func syntheticImage(total int64) (v1.Image, string, error) {
	rng := rand.New(rand.NewPCG(1, 2))
	g := &gen{rng: rng}
	var layers []v1.Layer
	var files, bytesTotal int64
	var baseNames []string
	for i, share := range []float64{0.45, 0.30, 0.15, 0.10} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		budget := int64(float64(total) * share)
		top := fmt.Sprintf("layer%d", i)
		switch i {
		case 2: // updates
			for _, n := range baseNames[:len(baseNames)/10] {
				g.file(tw, n, g.size(), 0o644, 0, 0)
				budget -= 8 << 10
			}
			for _, n := range baseNames[len(baseNames)/10 : len(baseNames)/5] {
				dir, base := splitPath(n)
				g.header(tw, &tar.Header{Name: dir + ".wh." + base, Typeflag: tar.TypeReg})
			}
			g.header(tw, &tar.Header{Name: "layer0/d3/", Typeflag: tar.TypeDir, Mode: 0o755})
			g.header(tw, &tar.Header{Name: "layer0/d3/.wh..wh..opq", Typeflag: tar.TypeReg})
		}
		var names []string
		for d := 0; budget > 0; d++ {
			dir := fmt.Sprintf("%s/d%d", top, d)
			g.header(tw, &tar.Header{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o755})
			for f := 0; f < 200 && budget > 0; f++ {
				n := fmt.Sprintf("%s/f%d", dir, f)
				size := g.size()
				uid := 0
				if f%7 == 0 {
					uid = 1000
				}
				g.file(tw, n, size, 0o644|int64(f%3)*0o111, uid, uid)
				budget -= size
				files++
				bytesTotal += size
				names = append(names, n)
			}
		}
		if i == 0 {
			baseNames = names
		}
		if i == 3 {
			// Hardlinks within the layer: the baseline's newest-first
			// export cannot order links to files of older layers.
			for j, n := range names[:min(500, len(names))] {
				g.header(tw, &tar.Header{Name: fmt.Sprintf("links/h%d", j), Typeflag: tar.TypeLink, Linkname: n})
				g.header(tw, &tar.Header{Name: fmt.Sprintf("links/s%d", j), Typeflag: tar.TypeSymlink, Linkname: "/" + baseNames[j], Mode: 0o777})
			}
		}
		if err := tw.Close(); err != nil {
			return nil, "", err
		}
		data := buf.Bytes()
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
		if err != nil {
			return nil, "", err
		}
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return nil, "", err
	}
	var compressed int64
	for _, l := range layers {
		s, _ := l.Size()
		compressed += s
	}
	return img, fmt.Sprintf("%d files, %d MiB of data, %d MiB compressed", files, bytesTotal>>20, compressed>>20), nil
}

type gen struct {
	rng   *rand.Rand
	words []string
}

// size draws a file size: mostly small, a few large, like a distro.
func (g *gen) size() int64 {
	switch r := g.rng.IntN(1000); {
	case r < 800:
		return int64(g.rng.IntN(4 << 10))
	case r < 970:
		return int64(4<<10 + g.rng.IntN(28<<10))
	case r < 998:
		return int64(32<<10 + g.rng.IntN(480<<10))
	default:
		return int64(1<<20 + g.rng.IntN(3<<20))
	}
}

func (g *gen) header(tw *tar.Writer, h *tar.Header) {
	h.ModTime = time.Unix(1700000000, 0)
	if err := tw.WriteHeader(h); err != nil {
		panic(err)
	}
}

// file writes size bytes: half text from a small vocabulary, half
// random bytes, so the layer compresses about 2x.
func (g *gen) file(tw *tar.Writer, name string, size, mode int64, uid, gid int) {
	g.header(tw, &tar.Header{Name: name, Typeflag: tar.TypeReg, Size: size, Mode: mode, Uid: uid, Gid: gid})
	if g.words == nil {
		for i := range 512 {
			g.words = append(g.words, fmt.Sprintf("w%x%s", i, strings.Repeat("e", i%9)))
		}
	}
	buf := make([]byte, 0, size)
	for int64(len(buf)) < size {
		if g.rng.IntN(2) == 0 {
			for j := 0; j < 64; j++ {
				buf = append(buf, g.words[g.rng.IntN(len(g.words))]...)
				buf = append(buf, ' ')
			}
		} else {
			for j := 0; j < 64; j++ {
				buf = append(buf, byte(g.rng.Uint32()), byte(g.rng.Uint32()>>8), byte(g.rng.Uint32()>>16), byte(g.rng.Uint32()>>24))
			}
		}
	}
	tw.Write(buf[:size])
}

func splitPath(p string) (string, string) {
	i := strings.LastIndex(p, "/")
	return p[:i+1], p[i+1:]
}
