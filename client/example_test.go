package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"

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
