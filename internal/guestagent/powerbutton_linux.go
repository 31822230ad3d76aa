package guestagent

import (
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The power button. A VMM asks a guest to shut down by pressing it: QEMU's
// system_powerdown raises an ACPI event, the kernel's button driver turns
// it into a KEY_POWER press on an input device, and evdev shows that as
// /dev/input/eventN. Under systemd, logind acts on it; with the agent as
// PID 1 nobody would, so PID 1 reads the input devices itself. (Firecracker
// sends Ctrl-Alt-Del instead, which reaches PID 1 as SIGINT.)

const (
	evKey       = 0x01 // EV_KEY
	keyPower    = 116  // KEY_POWER
	keyPressed  = 1
	inputDevDir = "/dev/input"
)

// inputEventSize is sizeof(struct input_event): a struct timeval, then
// type and code (u16) and value (s32).
const inputEventSize = int(unsafe.Sizeof(unix.Timeval{})) + 8

// powerPressed reads input events from r until a KEY_POWER press; it
// returns nil then, or the read error that ended it.
func powerPressed(r io.Reader) error {
	buf := make([]byte, inputEventSize*16)
	tv := inputEventSize - 8
	for {
		n, err := io.ReadAtLeast(r, buf, inputEventSize)
		for ev := buf[:n-n%inputEventSize]; len(ev) >= inputEventSize; ev = ev[inputEventSize:] {
			typ := binary.NativeEndian.Uint16(ev[tv:])
			code := binary.NativeEndian.Uint16(ev[tv+2:])
			value := int32(binary.NativeEndian.Uint32(ev[tv+4:]))
			if typ == evKey && code == keyPower && value == keyPressed {
				return nil
			}
		}
		if err != nil {
			return err
		}
	}
}

// watchPowerButton calls pressed once the power button is pressed on any
// input device in dir, looking for new devices every rescan (modules may
// load late).
func watchPowerButton(dir string, pressed func(), rescan time.Duration, log *slog.Logger) {
	seen := map[string]bool{}
	hit := make(chan struct{}, 1)
	for {
		paths, _ := filepath.Glob(filepath.Join(dir, "event*"))
		for _, p := range paths {
			if seen[p] {
				continue
			}
			f, err := os.Open(p)
			if err != nil {
				log.Debug("cannot watch input device yet", "dev", p, "err", err)
				continue // tried again at the next rescan
			}
			seen[p] = true
			go func() {
				defer f.Close()
				if err := powerPressed(f); err == nil {
					select {
					case hit <- struct{}{}:
					default:
					}
				} else if !errors.Is(err, io.EOF) {
					log.Debug("input device gone", "dev", p, "err", err)
				}
			}()
		}
		select {
		case <-hit:
			log.Info("power button pressed")
			pressed()
			return
		case <-time.After(rescan):
		}
	}
}
