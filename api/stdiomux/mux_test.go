package stdiomux

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"testing"
)

func TestFramesRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	big := bytes.Repeat([]byte{0, 1, 2, 0xff}, MaxPayload/2) // two frames' worth
	fw := NewWriter(&buf)
	fw.Write(TypeStdout, []byte("out"))
	fw.Write(TypeStderr, nil)
	fw.WriteJSON(TypeControl, Control{Op: OpEOF})
	fw.Write(TypeStdin, big)
	fw.WriteJSON(TypeExit, End{Detached: true})

	type frame struct {
		t Type
		n int
	}
	var got []frame
	var stdin []byte
	for {
		ty, p, err := ReadFrame(&buf, nil)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, frame{ty, len(p)})
		if ty == TypeStdin {
			stdin = append(stdin, p...)
		}
	}
	want := []frame{{TypeStdout, 3}, {TypeStderr, 0}, {TypeControl, 12}, {TypeStdin, MaxPayload}, {TypeStdin, MaxPayload}, {TypeExit, 17}}
	if len(got) != len(want) {
		t.Fatalf("frames = %v; want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("frame %d = %v; want %v", i, got[i], want[i])
		}
	}
	if !bytes.Equal(stdin, big) {
		t.Error("stdin payload changed on the way")
	}
}

func TestMalformedFrames(t *testing.T) {
	for name, raw := range map[string][]byte{
		"unknown type":      {9, 0, 0, 0, 0},
		"oversized":         {1, 0x7f, 0, 0, 0},
		"truncated header":  {1, 0},
		"truncated payload": {1, 0, 0, 0, 5, 'a'},
	} {
		if _, _, err := ReadFrame(bytes.NewReader(raw), nil); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v; want ErrMalformed", name, err)
		}
	}
	if err := WriteFrame(io.Discard, TypeStdout, make([]byte, MaxPayload+1)); !errors.Is(err, ErrMalformed) {
		t.Errorf("writing an oversized frame: %v", err)
	}
}

func TestWriterKeepsFramesWhole(t *testing.T) {
	var buf bytes.Buffer
	fw := NewWriter(&buf)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				fw.Write(Type(1+i%2), bytes.Repeat([]byte{byte(i)}, 100+i))
			}
		}()
	}
	wg.Wait()
	for n := 0; ; n++ {
		ty, p, err := ReadFrame(&buf, nil)
		if err == io.EOF {
			if n != 800 {
				t.Errorf("read %d frames; want 800", n)
			}
			return
		}
		if err != nil || len(p) < 100 || int(ty) != 1+int(p[0])%2 || len(p) != 100+int(p[0]) {
			t.Fatalf("frame %d: type %v len %d err %v: interleaved writes", n, ty, len(p), err)
		}
	}
}
