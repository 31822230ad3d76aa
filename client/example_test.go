package client_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"banger/api"
	"banger/api/errdefs"
	"banger/client"
)

// Example connects to the current user's daemon, found the way the CLI
// finds it, and asks what it is.
func Example() {
	ctx := context.Background()
	sock, err := client.DefaultSocket()
	if err != nil {
		log.Fatal(err)
	}
	c := client.New(sock)
	st, err := c.Status(ctx)
	if client.IsNotRunning(err) {
		log.Fatal("bangerd is not running; start it with 'banger daemon start'")
	} else if err != nil {
		log.Fatal(err)
	}
	fmt.Println("api", st.APIVersion)
	// Output: api v1
}

// ExampleClient_CreateVM creates a VM from the default image, following
// its progress, and deletes it.
func ExampleClient_CreateVM() {
	ctx := context.Background()
	sock, _ := client.DefaultSocket()
	c := client.New(sock)
	steps := 0
	vm, err := c.CreateVM(ctx, api.CreateVMRequest{Name: "example-create", DiskBytes: 64 << 20}, func(ev api.Event) {
		steps++ // a terminal program would draw ev.Step, ev.Current and ev.Total
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(vm.Name, vm.State, steps > 0)
	if err := c.DeleteVM(ctx, vm.Name, true); err != nil {
		log.Fatal(err)
	}
	// Output: example-create running true
}

// ExampleClient_Exec runs a command in a VM: its stdin, stdout and
// stderr travel over a stdio_mux_v1 connection, and Output returns how it
// ended.
func ExampleClient_Exec() {
	ctx := context.Background()
	sock, _ := client.DefaultSocket()
	c := client.New(sock)
	if _, err := c.CreateVM(ctx, api.CreateVMRequest{Name: "example-exec", DiskBytes: 64 << 20}, nil); err != nil {
		log.Fatal(err)
	}
	defer c.DeleteVM(ctx, "example-exec", true)

	conn, err := c.Exec(ctx, "example-exec", api.ExecRequest{Argv: []string{"sh", "-c", "echo hello; echo oops >&2; exit 3"}})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	conn.CloseStdin() // nothing to send
	end, err := conn.Output(os.Stdout, io.Discard)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(end.Exit)
	// Output:
	// hello
	// exit status 3
}

// ExampleClient_VM shows that errors keep their kind across the socket:
// errors.Is works with the errdefs sentinels.
func ExampleClient_VM() {
	sock, _ := client.DefaultSocket()
	c := client.New(sock)
	_, err := c.VM(context.Background(), "no-such-vm")
	fmt.Println(errors.Is(err, errdefs.ErrNotFound))
	// Output: true
}

// ExampleClient_StartSession starts a long-lived guest process the daemon
// manages, waits for it to end and reads its stdout log.
func ExampleClient_StartSession() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sock, _ := client.DefaultSocket()
	c := client.New(sock)
	if _, err := c.CreateVM(ctx, api.CreateVMRequest{Name: "example-session", DiskBytes: 64 << 20}, nil); err != nil {
		log.Fatal(err)
	}
	defer c.DeleteVM(ctx, "example-session", true)

	s, err := c.StartSession(ctx, "example-session", api.StartSessionRequest{Name: "job", Argv: []string{"sh", "-c", "echo working; echo done"}})
	if err != nil {
		log.Fatal(err)
	}
	for s.State == api.SessionRunning {
		time.Sleep(50 * time.Millisecond)
		if s, err = c.Session(ctx, "example-session", "job"); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(s.Exit)
	if err := c.SessionLogs(ctx, "example-session", "job", "stdout", false, os.Stdout); err != nil {
		log.Fatal(err)
	}
	// Output:
	// exit status 0
	// working
	// done
}

// ExampleClient_CopyIn sends a tar archive into a guest directory and
// checks what arrived.
func ExampleClient_CopyIn() {
	ctx := context.Background()
	sock, _ := client.DefaultSocket()
	c := client.New(sock)
	if _, err := c.CreateVM(ctx, api.CreateVMRequest{Name: "example-copy", DiskBytes: 64 << 20}, nil); err != nil {
		log.Fatal(err)
	}
	defer c.DeleteVM(ctx, "example-copy", true)

	var archive bytes.Buffer
	tw := tar.NewWriter(&archive)
	tw.WriteHeader(&tar.Header{Name: "notes.txt", Mode: 0o644, Size: 6, Typeflag: tar.TypeReg})
	tw.Write([]byte("hello\n"))
	tw.Close()

	dir := exampleGuestDir // a guest directory, created when missing
	res, err := c.CopyIn(ctx, "example-copy", dir, &archive)
	if err != nil {
		log.Fatal(err)
	}
	st, err := c.StatPath(ctx, "example-copy", dir+"/notes.txt")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Entries, res.Bytes, st.Kind)
	// Output: 1 6 file
}
