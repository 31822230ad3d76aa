package guestagent

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"banger/api/errdefs"
)

// account is a user from /etc/passwd. The agent reads the files itself so
// it behaves the same with or without cgo and on images without NSS.
type account struct {
	Name   string
	UID    uint32
	GID    uint32
	Groups []uint32 // supplementary, from /etc/group
	Home   string
	Shell  string
}

const (
	passwdFile = "/etc/passwd"
	groupFile  = "/etc/group"
)

// lookupAccount finds name in /etc/passwd; "" means the agent's own user.
func lookupAccount(name string) (account, error) {
	uid := os.Getuid()
	acct, found := account{}, false
	eachLine(passwdFile, func(f []string) bool {
		if len(f) < 7 {
			return true
		}
		if (name != "" && f[0] == name) || (name == "" && f[2] == strconv.Itoa(uid)) {
			acct, found = parsePasswd(f), true
			return false
		}
		return true
	})
	if !found {
		if name != "" {
			return account{}, errdefs.NotFound("user %q not found in %s", name, passwdFile)
		}
		return account{Name: strconv.Itoa(uid), UID: uint32(uid), GID: uint32(os.Getgid()), Home: "/", Shell: "/bin/sh"}, nil
	}
	acct.Groups = supplementaryGroups(acct.Name, acct.GID)
	return acct, nil
}

func parsePasswd(f []string) account {
	uid, _ := strconv.ParseUint(f[2], 10, 32)
	gid, _ := strconv.ParseUint(f[3], 10, 32)
	a := account{Name: f[0], UID: uint32(uid), GID: uint32(gid), Home: f[5], Shell: f[6]}
	if a.Home == "" {
		a.Home = "/"
	}
	if a.Shell == "" {
		a.Shell = "/bin/sh"
	}
	return a
}

func supplementaryGroups(user string, primary uint32) []uint32 {
	groups := []uint32{primary}
	eachLine(groupFile, func(f []string) bool {
		if len(f) >= 4 && slices.Contains(strings.Split(f[3], ","), user) {
			if gid, err := strconv.ParseUint(f[2], 10, 32); err == nil && uint32(gid) != primary {
				groups = append(groups, uint32(gid))
			}
		}
		return true
	})
	return groups
}

// eachLine calls fn with the colon-separated fields of each line of path
// until fn returns false. A missing file has no lines.
func eachLine(path string, fn func([]string) bool) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !fn(strings.Split(line, ":")) {
			return
		}
	}
}

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// processEnv is a login-like environment for acct with extra (KEY=VALUE)
// applied on top.
func processEnv(acct account, term string, extra []string) []string {
	env := []string{
		"PATH=" + defaultPath,
		"HOME=" + acct.Home,
		"USER=" + acct.Name,
		"LOGNAME=" + acct.Name,
		"SHELL=" + acct.Shell,
	}
	if term != "" {
		env = append(env, "TERM="+term)
	}
	for _, kv := range extra {
		key, _, ok := strings.Cut(kv, "=")
		if !ok || key == "" {
			continue
		}
		env = slices.DeleteFunc(env, func(e string) bool { return strings.HasPrefix(e, key+"=") })
		env = append(env, kv)
	}
	return env
}

// lookPath resolves name against the PATH in env, as the child would.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := defaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errdefs.NotFound("executable %q not found in PATH %s", name, path)
}
