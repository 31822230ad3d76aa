package cli

import (
	"bytes"
	"strings"
	"testing"

	"banger/api"
)

// The attach line comes with a note when the service was not listening
// yet, and without one when it was.
func TestRunNextStepsSayWhenOpencodeIsNotListening(t *testing.T) {
	for _, listening := range []bool{true, false} {
		var out bytes.Buffer
		printNextSteps(&out, runResult{
			VM:                api.VM{Name: "app-1a2b", IP: "172.16.0.2"},
			Workspace:         api.Workspace{VM: "app-1a2b", GuestPath: "/root/repo", Mode: "shallow"},
			ImageTools:        []string{"mise", "opencode", "claude", "pi"},
			NameResolves:      true,
			OpencodeListening: listening,
		})
		got := out.String()
		note := strings.Contains(got, "the opencode service is not listening on 4096 yet; 'banger vm ports app-1a2b' lists it")
		if note == listening {
			t.Errorf("listening %v: note shown %v:\n%s", listening, note, got)
		}
		if !strings.Contains(got, "opencode attach http://app-1a2b.vm:4096 --dir /root/repo\n") {
			t.Errorf("listening %v: no attach line:\n%s", listening, got)
		}
	}
}

func TestListensOn(t *testing.T) {
	ports := []api.Port{{Proto: "udp", Port: 4096}, {Proto: "tcp", Port: 22}}
	if listensOn(ports, 4096) {
		t.Error("a UDP socket counts as the opencode service")
	}
	if !listensOn(append(ports, api.Port{Proto: "tcp6", Addr: "::", Port: 4096, Process: "opencode"}), 4096) {
		t.Error("a tcp6 listener on 4096 does not count")
	}
}
