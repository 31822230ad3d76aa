package fcstandin

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Options describe a stand-in for Install; see Config for the meaning of
// each field.
type Options struct {
	SpecPath         string // required
	Fail             []Failure
	Crash            string
	Hang             string
	IgnoreCtrlAltDel bool
	Record           string
	GuestDir         string
	Version          string
	Tamper           string
}

// Install writes an executable named "firecracker" into dir that runs
// this binary (a test binary whose TestMain calls RunIfStandIn) as a
// stand-in configured by opts, and returns its path. It is a shell script
// that execs the binary, so the pid a driver sees is the stand-in's.
func Install(dir string, opts Options) (string, error) {
	if opts.SpecPath == "" {
		return "", errors.New("installing the firecracker stand-in: the spec path is required")
	}
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("installing the firecracker stand-in: %w", err)
	}
	var fails []string
	for _, f := range opts.Fail {
		fails = append(fails, f.String())
	}
	env := [][2]string{
		{EnvStandIn, "1"},
		{EnvSpec, opts.SpecPath},
		{EnvFail, strings.Join(fails, ",")},
		{EnvCrash, opts.Crash},
		{EnvHang, opts.Hang},
		{EnvRecord, opts.Record},
		{EnvGuestDir, opts.GuestDir},
		{EnvVersion, opts.Version},
		{EnvTamper, opts.Tamper},
	}
	if opts.IgnoreCtrlAltDel {
		env = append(env, [2]string{EnvCtrlAltDel, "ignore"})
	}
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	for _, kv := range env {
		fmt.Fprintf(&b, "export %s=%s\n", kv[0], shellQuote(kv[1]))
	}
	fmt.Fprintf(&b, "exec %s \"$@\"\n", shellQuote(self))
	path := filepath.Join(dir, "firecracker")
	if err := os.WriteFile(path, []byte(b.String()), 0o755); err != nil {
		return "", fmt.Errorf("installing the firecracker stand-in: %w", err)
	}
	return path, nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// Record is what a stand-in recorded: its pid and every request, and
// what fake jailers sharing the file were asked to do.
type Record struct {
	PIDs     []int // one per stand-in process started with the file
	Requests []Recorded
	Jailer   []JailerRun
}

// ReadRecord reads a record file written by stand-ins.
func ReadRecord(path string) (Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return Record{}, err
	}
	defer f.Close()
	var rec Record
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var probe struct {
			Event string `json:"event"`
			PID   int    `json:"pid"`
		}
		if err := json.Unmarshal(sc.Bytes(), &probe); err != nil {
			return rec, fmt.Errorf("reading %s: %w", path, err)
		}
		switch probe.Event {
		case "start":
			rec.PIDs = append(rec.PIDs, probe.PID)
			continue
		case "jailer":
			var j JailerRun
			if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
				return rec, fmt.Errorf("reading %s: %w", path, err)
			}
			rec.Jailer = append(rec.Jailer, j)
			continue
		}
		var r Recorded
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return rec, fmt.Errorf("reading %s: %w", path, err)
		}
		rec.Requests = append(rec.Requests, r)
	}
	return rec, sc.Err()
}
