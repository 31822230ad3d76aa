package server

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The helper-process half: when re-executed with BANGER_PEER_DIAL set,
// the test binary dials that socket, sends one request and prints what
// came back.
func TestMain(m *testing.M) {
	if sock := os.Getenv("BANGER_PEER_DIAL"); sock != "" {
		c, err := net.Dial("unix", sock)
		if err != nil {
			fmt.Println("dial:", err)
			os.Exit(0)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprint(c, "GET /v1/daemon HTTP/1.1\r\nHost: bangerd\r\n\r\n")
		line, err := bufio.NewReader(c).ReadString('\n')
		fmt.Printf("reply: %q err: %v\n", line, err)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestListenerRefusesOtherUsers runs a client as another user against a
// socket whose file permissions let it in, so only the peer-uid check
// stands between it and the API.
func TestListenerRefusesOtherUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	dir, err := os.MkdirTemp("", "bgpeer")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	sock := filepath.Join(dir, "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(sock, 0o666)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })}
	go srv.Serve(&Listener{Listener: l, Log: slog.New(slog.DiscardHandler)})
	defer srv.Close()

	// The test binary sits in a private build directory: give the other
	// user a copy it can execute.
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	helper := filepath.Join(dir, "helper")
	if err := os.WriteFile(helper, self, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(uid uint32) string {
		cmd := exec.Command(helper, "-test.run=^$")
		cmd.Env = append(os.Environ(), "BANGER_PEER_DIAL="+sock)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helper as uid %d: %v: %s", uid, err, out)
		}
		return string(out)
	}
	if out := run(0); !strings.Contains(out, "200 OK") {
		t.Errorf("same uid: %s; want an answer", out)
	}
	out := run(65534)
	// Closed unanswered: EOF, or a reset when the request was unread.
	if strings.Contains(out, "200") || !(strings.Contains(out, "EOF") || strings.Contains(out, "connection reset")) {
		t.Errorf("uid 65534: %s; want the connection closed unanswered", out)
	}
}
