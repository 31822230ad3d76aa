package qemu

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// modelVersion changes whenever buildArgs changes the device model in a
// way deviceModel does not see (e.g. a device property), so that states
// saved before the change are refused instead of failing to load.
const modelVersion = "banger-qemu-model=1"

// model is the device model a migration stream is bound to: QEMU loads a
// stream only into a machine with the same devices in the same order.
// It is the command line without what may differ between the saved VM
// and a restored one: file paths, the TAP, the MAC, the runtime dir, the
// kernel command line and what holds guest memory.
type model []string

// savedModel is the content of a state's model file.
type savedModel struct {
	DeviceModel model `json:"device_model"`
}

// flags without a value in buildArgs' command lines.
var bareFlags = []string{"-nodefaults", "-no-user-config", "-no-reboot", "-S", "-daemonize"}

// dropped flags name paths or things a restore may change.
var droppedFlags = []string{"-name", "-pidfile", "-qmp", "-kernel", "-initrd", "-append", "-incoming", "-serial"}

// deviceModel extracts the model from a command line made by buildArgs.
func deviceModel(args []string) model {
	m := model{modelVersion}
	for i := 0; i < len(args); i++ {
		flag := args[i]
		if slices.Contains(bareFlags, flag) || i+1 == len(args) {
			continue
		}
		i++
		val := args[i]
		switch {
		case slices.Contains(droppedFlags, flag):
			continue
		case flag == "-object" && strings.HasPrefix(val, "memory-backend-"):
			// Anonymous or file, shared or private: the stream loads
			// into any backend of the same name and size.
			_, named, _ := strings.Cut(keep(val, "id", "size"), ",")
			val = "memory," + named
		case flag == "-chardev" || flag == "-drive":
			val = keep(val, "id", "readonly")
		case flag == "-netdev":
			val = keep(val, "id")
		case flag == "-device":
			val = drop(val, "mac")
		}
		m = append(m, flag+" "+val)
	}
	return m
}

// keep returns the kind (the first, unnamed field) of a QEMU option
// list and the named keys among its fields.
func keep(opts string, keys ...string) string {
	return filterOpts(opts, func(k string) bool { return slices.Contains(keys, k) })
}

func drop(opts string, keys ...string) string {
	return filterOpts(opts, func(k string) bool { return !slices.Contains(keys, k) })
}

func filterOpts(opts string, want func(key string) bool) string {
	// Doubled commas are escapes within a value, not separators.
	fields := strings.Split(strings.ReplaceAll(opts, ",,", "\x00"), ",")
	var out []string
	for i, f := range fields {
		k, _, named := strings.Cut(f, "=")
		if (i == 0 && !named) || want(k) {
			out = append(out, strings.ReplaceAll(f, "\x00", ",,"))
		}
	}
	return strings.Join(out, ",")
}

func (m model) value(flag string) string {
	for _, e := range m {
		if v, ok := strings.CutPrefix(e, flag+" "); ok {
			return v
		}
	}
	return ""
}

func (m model) cpus() int {
	n, _ := strconv.Atoi(m.value("-smp"))
	return n
}

func (m model) memoryMiB() int {
	n, _ := strconv.Atoi(m.value("-m"))
	return n
}

// diff names what differs between a saved model and the one a restore
// would run, for the error that refuses it.
func (m model) diff(restore model) string {
	var parts []string
	for _, e := range m {
		if !slices.Contains(restore, e) {
			parts = append(parts, "saved "+strconv.Quote(e))
		}
	}
	for _, e := range restore {
		if !slices.Contains(m, e) {
			parts = append(parts, "restore "+strconv.Quote(e))
		}
	}
	if len(parts) == 0 && !slices.Equal(m, restore) {
		parts = append(parts, "the devices are in another order")
	}
	return strings.Join(parts, "; ")
}

// procArgs reads a process's command line.
func procArgs(pid int) ([]string, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return nil, fmt.Errorf("reading qemu's command line: %w", err)
	}
	args := strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")
	return args[1:], nil // without the program
}

// runningVersion asks a running QEMU which version it is, in the form
// `qemu-system-x86_64 --version` prints it.
func runningVersion(ctx context.Context, q *qmp) (string, error) {
	raw, err := q.call(ctx, "query-version", nil)
	if err != nil {
		return "", fmt.Errorf("asking qemu its version: %w", err)
	}
	var v struct {
		QEMU    struct{ Major, Minor, Micro int } `json:"qemu"`
		Package string                            `json:"package"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", fmt.Errorf("decoding query-version reply: %w", err)
	}
	s := fmt.Sprintf("%d.%d.%d", v.QEMU.Major, v.QEMU.Minor, v.QEMU.Micro)
	if p := strings.TrimSpace(v.Package); p != "" {
		s += " (" + p + ")"
	}
	return s, nil
}

// binaryVersion is the version of the QEMU binary a restore would run,
// from the first line of `--version`: "QEMU emulator version 7.2.22
// (Debian 1:7.2+dfsg-7+deb12u18+b3)".
// The answer is kept while the binary's file is unchanged: asking takes
// a fifth of a second under load, a share of a restore.
func (d *Driver) binaryVersion(ctx context.Context) (string, error) {
	bin, err := exec.LookPath(d.opts.Binary)
	if err != nil {
		return "", fmt.Errorf("finding %s: %w (install qemu-system-x86)", d.opts.Binary, err)
	}
	fi, err := os.Stat(bin)
	if err != nil {
		return "", err
	}
	key := fmt.Sprintf("%s %d %d", bin, fi.Size(), fi.ModTime().UnixNano())
	d.versionMu.Lock()
	defer d.versionMu.Unlock()
	if d.versionKey == key {
		return d.version, nil
	}
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("asking %s --version: %w", bin, err)
	}
	line, _, _ := strings.Cut(string(out), "\n")
	v, ok := strings.CutPrefix(strings.TrimSpace(line), "QEMU emulator version ")
	if !ok {
		return "", fmt.Errorf("%s --version printed %q, not a QEMU version", bin, line)
	}
	d.versionKey, d.version = key, v
	return v, nil
}
