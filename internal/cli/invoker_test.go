package cli

import (
	"os"
	"os/user"
	"strconv"
	"strings"
	"testing"
)

func TestInvoker(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Skip(err)
	}
	uid, _ := strconv.Atoi(me.Uid)
	gid, _ := strconv.Atoi(me.Gid)
	for _, name := range []string{me.Username, me.Uid} {
		gotUID, gotGID, home, err := invoker(name)
		if err != nil || gotUID != uid || gotGID != gid || home != me.HomeDir {
			t.Errorf("invoker(%q) = %d, %d, %q, %v; want %d, %d, %q", name, gotUID, gotGID, home, err, uid, gid, me.HomeDir)
		}
	}
	if _, _, _, err := invoker("no-such-user-banger"); err == nil || !strings.Contains(err.Error(), "--user no-such-user-banger") {
		t.Errorf("unknown --user: err = %v, want one naming the flag", err)
	}
	// Without --user: sudo's user when root ran through sudo, else the caller.
	t.Setenv("SUDO_UID", "")
	if gotUID, _, home, err := invoker(""); err != nil || gotUID != os.Getuid() || home != "" {
		t.Errorf("invoker without sudo = %d, %q, %v; want the caller", gotUID, home, err)
	}
	if os.Geteuid() == 0 {
		t.Setenv("SUDO_UID", me.Uid)
		if gotUID, _, home, err := invoker(""); err != nil || gotUID != uid || home != me.HomeDir {
			t.Errorf("invoker under sudo = %d, %q, %v; want sudo's user with their home", gotUID, home, err)
		}
	}
}
