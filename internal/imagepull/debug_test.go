package imagepull

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"testing"
)

func TestDebugDump(t *testing.T) {
	base := tarOf(t, dir("usr"), dir("usr/lib"), symlink("lib", "usr/lib"), file("usr/lib/a", "x"))
	upper := tarOf(t, file("lib/extra.so", "y"))
	_ = upper
	dir := t.TempDir()
	var ls []Layer
	for i, d := range [][]byte{base, upper} {
		p := dir + "/" + string(rune('a'+i))
		writeFile(t, p, d)
		ls = append(ls, Layer{Digest: "sha256:00", Path: p})
	}
	f, err := flatten(context.Background(), ls, t.TempDir(), newBudget(1<<30, "x"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := f.writeTar(context.Background(), &buf, reservation{}, nil); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		t.Logf("%c %s -> %s", h.Typeflag, h.Name, h.Linkname)
	}
}

func writeFile(t *testing.T, p string, d []byte) {
	if err := os.WriteFile(p, d, 0o644); err != nil {
		t.Fatal(err)
	}
}
