package guestagent

import (
	"bytes"
	"encoding/binary"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// inputEvent encodes one struct input_event as the kernel writes it.
func inputEvent(typ, code uint16, value int32) []byte {
	b := make([]byte, inputEventSize-8, inputEventSize)
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = binary.NativeEndian.AppendUint16(b, code)
	return binary.NativeEndian.AppendUint32(b, uint32(value))
}

func TestPowerPressed(t *testing.T) {
	const evSyn, keyA = 0, 30
	var stream bytes.Buffer
	for _, ev := range [][]byte{
		inputEvent(evKey, keyA, keyPressed),    // another key
		inputEvent(evKey, keyPower, 0),         // a release is not a press
		inputEvent(evSyn, 0, 0),                // a report boundary
		inputEvent(0x04, keyPower, keyPressed), // EV_MSC with the same code
	} {
		stream.Write(ev)
	}
	if err := powerPressed(bytes.NewReader(stream.Bytes())); err != io.EOF {
		t.Fatalf("events without a power press: %v, want EOF", err)
	}
	stream.Write(inputEvent(evKey, keyPower, keyPressed))
	// One byte at a time: events split across reads still count.
	if err := powerPressed(&oneByte{bytes.NewReader(stream.Bytes())}); err != nil {
		t.Fatalf("power press: %v, want nil", err)
	}
}

type oneByte struct{ r io.Reader }

func (o *oneByte) Read(p []byte) (int, error) { return o.r.Read(p[:1]) }

// watchPowerButton finds a device that appears after it started and acts
// on its power press (a FIFO stands for /dev/input/event1).
func TestWatchPowerButton(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "mice"), nil, 0o644) // not an event device
	pressed := make(chan struct{})
	go watchPowerButton(dir, func() { close(pressed) }, 20*time.Millisecond, slog.New(slog.DiscardHandler))

	time.Sleep(50 * time.Millisecond)
	dev := filepath.Join(dir, "event1")
	if err := unix.Mkfifo(dev, 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(dev, os.O_WRONLY, 0) // blocks until the watcher opens it
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write(inputEvent(evKey, keyPower, 0))
	select {
	case <-pressed:
		t.Fatal("a key release counted as a press")
	case <-time.After(100 * time.Millisecond):
	}
	w.Write(inputEvent(evKey, keyPower, keyPressed))
	select {
	case <-pressed:
	case <-time.After(10 * time.Second):
		t.Fatal("the power press was not noticed")
	}
}
