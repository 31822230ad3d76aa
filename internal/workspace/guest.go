package workspace

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path"
	"strings"

	"banger/api/errdefs"
)

// FinalizeScript runs in the guest (sh -c) once the stream is extracted
// into a staging directory next to the target. Its arguments are
//
//	staging target readonly(0|1) branch from [link-name link-target]...
//
// When the stream carries CheckoutMarker it first checks the listed index
// entries out with git. It makes the symlinks the stream could not carry,
// creates and checks out the branch, then replaces the target with the
// staging directory: the
// old tree is moved aside, the new one moved in, the old one deleted. So
// a second prepare replaces the first tree; it never merges into it.
//
// Read-only trees are made immutable (chattr +i on every file and
// directory), which stops root too and lasts across reboots; on a
// filesystem without that attribute the tree becomes a read-only bind
// mount instead, which lasts until the guest reboots. A later prepare
// lifts either before replacing the tree.
const FinalizeScript = `set -eu
new=$1 dst=$2 ro=$3 branch=$4 from=$5
shift 5
if [ -f "$new/.git/` + CheckoutMarker + `" ]; then
	# The stream held what differs from the index: git writes the rest
	# from the pack, and records their stat data in the index.
	git -C "$new" checkout-index -u -z --stdin < "$new/.git/` + CheckoutMarker + `"
	rm -f "$new/.git/` + CheckoutMarker + `"
fi
while [ $# -ge 2 ]; do
	mkdir -p "$(dirname "$new/$1")"
	ln -sfn "$2" "$new/$1"
	shift 2
done
if [ -n "$branch" ]; then
	if ! command -v git >/dev/null 2>&1; then
		echo "git is not installed in the guest; install it there to use --branch" >&2
		exit 3
	fi
	if ! git -C "$new" checkout -q -b "$branch" "$from"; then
		echo "banger: could not create branch $branch from $from (git says why above); with uncommitted changes, commit or stash them first, or branch from HEAD" >&2
		exit 4
	fi
fi
# mounted reports whether $1 is a mount point, from /proc/self/mountinfo
# (whose 5th field escapes space, tab, newline and backslash as octal):
# busybox images have no mountpoint, and a bind mount on the same
# filesystem looks like any directory to stat.
mounted() {
	[ -r /proc/self/mountinfo ] || return 1
	esc=$(printf '%s' "$1" | sed 's/\\/\\134/g; s/ /\\040/g; s/	/\\011/g')
	while read -r _ _ _ _ mp _; do
		if [ "$mp" = "$esc" ]; then return 0; fi
	done < /proc/self/mountinfo
	return 1
}
unlock() {
	n=0
	while mounted "$1" && [ $n -lt 16 ]; do umount "$1"; n=$((n + 1)); done
	if command -v lsattr >/dev/null 2>&1 && lsattr -d "$1" 2>/dev/null | cut -d' ' -f1 | grep -q i; then
		find "$1" ! -type l -exec chattr -i {} +
	fi
}
old=
if [ -e "$dst" ] || [ -L "$dst" ]; then
	unlock "$dst"
	old="$(dirname "$dst")/.$(basename "$dst").banger-old.$$"
	mv "$dst" "$old"
fi
mkdir -p "$(dirname "$dst")"
mv "$new" "$dst"
if [ -n "$old" ]; then rm -rf "$old"; fi
if [ "$ro" = 1 ]; then
	if command -v chattr >/dev/null 2>&1 && find "$dst" ! -type l -exec chattr +i {} + 2>/dev/null; then
		echo "readonly: immutable"
	else
		mount --bind "$dst" "$dst"
		mount -o remount,bind,ro "$dst"
		echo "readonly: bind mount"
	fi
fi
`

// Finalize is what FinalizeScript needs to know.
type Finalize struct {
	Staging, Target string
	ReadOnly        bool
	Branch, From    string // From: the commit the branch starts at
	Links           []Link
}

// Argv is the guest command line that runs FinalizeScript.
func (f Finalize) Argv() []string {
	ro := "0"
	if f.ReadOnly {
		ro = "1"
	}
	argv := []string{"sh", "-c", FinalizeScript, "banger-workspace", f.Staging, f.Target, ro, f.Branch, f.From}
	for _, l := range f.Links {
		argv = append(argv, l.Name, l.Target)
	}
	return argv
}

// StagingPath is a fresh directory next to target (on the same
// filesystem, so moving it into place is a rename).
func StagingPath(target string) string {
	var b [6]byte
	rand.Read(b[:])
	return path.Join(path.Dir(target), "."+path.Base(target)+".banger-new."+hex.EncodeToString(b[:]))
}

// reserved are guest directories a workspace must never replace.
var reserved = map[string]bool{
	"/": true, "/root": true, "/home": true, "/etc": true, "/usr": true, "/var": true, "/bin": true,
	"/sbin": true, "/lib": true, "/lib64": true, "/boot": true, "/dev": true, "/proc": true, "/sys": true,
	"/run": true, "/tmp": true, "/opt": true, "/srv": true, "/mnt": true, "/media": true,
}

// CheckGuestPath accepts an absolute, clean guest directory that is not
// a system directory (the target is replaced as a whole).
func CheckGuestPath(p string) error {
	if !path.IsAbs(p) || path.Clean(p) != p {
		return errdefs.Invalid("guest path %q must be absolute and clean, like /root/repo", p)
	}
	if reserved[p] || strings.Contains(p, "\x00") {
		return errdefs.Invalid("guest path %s would replace a system directory; use a directory of its own, like /root/repo", p)
	}
	return nil
}

// CheckBranch accepts a name git would take for a new branch.
func CheckBranch(ctx context.Context, name string) error {
	if name == "" || strings.HasPrefix(name, "-") {
		return errdefs.Invalid("branch name %q is not valid", name)
	}
	if _, err := git(ctx, os.TempDir(), nil, "check-ref-format", "--branch", name); err != nil {
		return errdefs.Invalid("%q is not a valid branch name; pick another --branch", name)
	}
	return nil
}
