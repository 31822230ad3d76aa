// Command vmlist measures 'banger vm list' as the CLI makes it: the typed
// client asking a real daemon over its API socket, with -vms VMs in the
// state database (each holding an address lease, as VMs on banger's
// network do) and the fake VMM driver. It prints the p50 and p99 latency
// of -calls listings, and whether listing wrote to the database.
//
//	go run ./bench/vmlist -vms 200 -calls 500
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"time"

	"banger/api"
	"banger/client"
	"banger/internal/config"
	"banger/internal/daemon"
	"banger/internal/daemon/vms"
	"banger/internal/network"
	"banger/internal/paths"
	"banger/internal/server"
	"banger/internal/store"
	"banger/internal/vmm/vmmfake"
)

func main() {
	n := flag.Int("vms", 200, "VMs in the database")
	calls := flag.Int("calls", 500, "listings to time")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the timed listings to this file")
	flag.Parse()
	ctx := context.Background()

	dir, err := os.MkdirTemp("", "bench-vmlist-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	layout := paths.New(filepath.Join(dir, "config"), filepath.Join(dir, "state"), filepath.Join(dir, "cache"), filepath.Join(dir, "run"))
	if err := layout.Ensure(); err != nil {
		log.Fatal(err)
	}
	st, err := store.Open(ctx, layout.DBPath)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	cfg := config.Default()
	if err := seed(ctx, st, cfg, *n); err != nil {
		log.Fatal(err)
	}
	agent := filepath.Join(dir, "agent")
	os.WriteFile(agent, []byte("agent stand-in"), 0o755)
	d, err := daemon.New(ctx, daemon.Options{
		Layout: layout, Config: cfg, Store: st, Logger: slog.New(slog.DiscardHandler),
		Driver: vmmfake.New(filepath.Join(dir, "guests")), Network: vms.NewHostNetwork(cfg, st, os.Getuid()),
		AgentBinary: agent, SSHPublicKey: "ssh-ed25519 AAAAbench bench\n",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	sock, err := server.Listen(layout)
	if err != nil {
		log.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- server.New(d, slog.New(slog.DiscardHandler), stop).Serve(sctx, sock) }()
	defer func() { stop(); <-done }()
	cl := client.New(layout.SocketPath)

	before := fileSize(layout.DBPath + "-wal")
	for range 20 { // warm up
		if _, err := cl.VMs(ctx); err != nil {
			log.Fatal(err)
		}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	lat := make([]time.Duration, 0, *calls)
	for range *calls {
		t0 := time.Now()
		got, err := cl.VMs(ctx)
		lat = append(lat, time.Since(t0))
		if err != nil || len(got) != *n || got[0].MAC == "" {
			log.Fatalf("listing: %d vms, %v", len(got), err)
		}
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	fmt.Printf("vm list, %d vms, %d calls: p50 %s  p99 %s  max %s\n", *n, *calls, pct(0.50).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
	fmt.Printf("database WAL grew by %d bytes while listing\n", fileSize(layout.DBPath+"-wal")-before)
}

// seed writes n stopped VMs, each with an address lease.
func seed(ctx context.Context, st *store.Store, cfg config.Config, n int) error {
	prefix := netip.MustParsePrefix("172.16.0.8/29") // inside the default cidr, past the bridge
	addr := prefix.Addr().Next()
	return st.Tx(ctx, func(tx *store.Tx) error {
		for i := range n {
			addr = addr.Next()
			name := fmt.Sprintf("vm%03d", i)
			v := store.VM{VM: api.VM{
				ID: fmt.Sprintf("%08x", i), Name: name, Image: "default", State: api.VMStopped, VMM: cfg.VMM,
				CPUs: 2, MemoryMiB: 1024, DiskBytes: 8 << 30, Dir: "/nonexistent/" + name, RuntimeDir: "/nonexistent/run/" + name,
				CreatedAt: time.Now(),
			}}
			if err := tx.PutVM(ctx, v); err != nil {
				return err
			}
			if err := tx.PutLease(ctx, store.Lease{VM: name, Addr: addr, MAC: network.MAC(addr).String(), CreatedAt: time.Now()}); err != nil {
				return err
			}
		}
		return nil
	})
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}
