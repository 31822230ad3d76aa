package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// checkDirModes: banger's config, state, cache and runtime directories
// hold keys, the API socket, logs, images and layers pulled with the
// user's credentials, so they must be the user's and closed to others.
// The daemon makes them 0700 at every start; this says so before then,
// and catches what it cannot fix (a directory of another user).
func checkDirModes(ctx context.Context, e *Env) Result {
	status := Pass
	var problems, chmod, fixes []string
	worse := func(s Status) {
		if s == Fail || status == Pass {
			status = s
		}
	}
	for _, d := range e.Layout.Private() {
		fi, err := os.Stat(d)
		switch {
		case errors.Is(err, os.ErrNotExist):
			continue // the daemon creates it 0700
		case err != nil:
			worse(Fail)
			problems = append(problems, "cannot check "+d+": "+err.Error())
			fixes = append(fixes, "make "+d+" a directory of yours")
			continue
		case !fi.IsDir():
			worse(Fail)
			problems = append(problems, d+" is not a directory")
			fixes = append(fixes, "remove "+d+" (banger creates it)")
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
			worse(Fail)
			problems = append(problems, fmt.Sprintf("%s belongs to uid %d, not to you", d, st.Uid))
			fixes = append(fixes, "remove "+d+" (banger creates it), or point its XDG variable at a directory of yours")
			continue
		}
		perm := fi.Mode().Perm()
		switch {
		case perm&0o022 != 0:
			worse(Fail)
			problems = append(problems, fmt.Sprintf("%s has mode %o: other users can replace what is in it", d, perm))
			chmod = append(chmod, d)
		case perm&0o077 != 0:
			worse(Warn)
			problems = append(problems, fmt.Sprintf("%s has mode %o: other users can read what is in it", d, perm))
			chmod = append(chmod, d)
		}
	}
	if status == Pass {
		return pass("config, state, cache and runtime directories are yours alone")
	}
	if len(chmod) > 0 {
		fixes = append([]string{"chmod 700 " + strings.Join(chmod, " ") + " (or restart the daemon: it does this at start)"}, fixes...)
	}
	return Result{Status: status, Detail: strings.Join(problems, "; "), Fix: strings.Join(fixes, "; ")}
}
