package guestagent

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"

	"banger/api/errdefs"
	"banger/internal/agentproto"
)

// randomDevice is the kernel pool reseed writes to.
const randomDevice = "/dev/random"

func (s *Server) reseed(ctx context.Context, req agentproto.ReseedRequest) (any, error) {
	if n := len(req.Entropy); n < agentproto.MinReseedBytes || n > agentproto.MaxReseedBytes {
		return nil, errdefs.Invalid("reseed with %d bytes of entropy: want %d to %d", n, agentproto.MinReseedBytes, agentproto.MaxReseedBytes)
	}
	dev := s.cfg.RandomDevice
	if dev == "" {
		dev = randomDevice
	}
	res, err := addEntropy(dev, req.Entropy)
	if err != nil {
		return nil, err
	}
	s.log.Info("random pool reseeded", "bytes", res.Bytes, "credited_bits", res.CreditedBits, "crng_reseeded", res.Reseeded)
	return res, nil
}

// addEntropy writes buf into the kernel's pool through dev with
// RNDADDENTROPY, crediting all of it (it comes from the host's CSPRNG),
// then asks for an immediate CRNG reseed with RNDRESEEDCRNG so the new
// entropy reaches getrandom(2) and /proc/sys/kernel/random/uuid now rather
// than at the next scheduled reseed. Kernels before 4.17 lack that ioctl;
// their reseed happens on its own schedule and Reseeded says so.
func addEntropy(dev string, buf []byte) (agentproto.ReseedResult, error) {
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		return agentproto.ReseedResult{}, fmt.Errorf("opening %s: %w", dev, err)
	}
	defer f.Close()
	// struct rand_pool_info { int entropy_count; int buf_size; __u32 buf[]; }
	info := make([]byte, 8+(len(buf)+3)&^3)
	binary.NativeEndian.PutUint32(info[0:], uint32(len(buf)*8))
	binary.NativeEndian.PutUint32(info[4:], uint32(len(buf)))
	copy(info[8:], buf)
	fd := f.Fd()
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, fd, unix.RNDADDENTROPY, uintptr(unsafe.Pointer(&info[0]))); e != 0 {
		if e == unix.ENOTTY || e == unix.EINVAL {
			return agentproto.ReseedResult{}, errdefs.Invalid("%s is not the kernel's random device (RNDADDENTROPY: %v)", dev, e)
		}
		return agentproto.ReseedResult{}, fmt.Errorf("adding entropy with RNDADDENTROPY on %s: %w", dev, e)
	}
	res := agentproto.ReseedResult{Bytes: len(buf), CreditedBits: len(buf) * 8}
	_, _, e := unix.Syscall(unix.SYS_IOCTL, fd, unix.RNDRESEEDCRNG, 0)
	switch {
	case e == 0:
		res.Reseeded = true
	case errors.Is(e, unix.ENOTTY), errors.Is(e, unix.EINVAL):
	default:
		return res, fmt.Errorf("reseeding the CRNG with RNDRESEEDCRNG on %s: %w", dev, e)
	}
	res.EntropyAvail, _ = strconv.Atoi(readTrimmed("/proc/sys/kernel/random/entropy_avail"))
	return res, nil
}
