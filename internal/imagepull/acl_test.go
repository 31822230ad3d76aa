package imagepull

import (
	"archive/tar"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// aclXattr encodes a POSIX ACL in the xattr API form tar carries
// (version 2, then tag, perm, id per entry).
func aclXattr(entries ...[3]uint32) string {
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, uint16(e[0]))
		b = binary.LittleEndian.AppendUint16(b, uint16(e[1]))
		b = binary.LittleEndian.AppendUint32(b, e[2])
	}
	return string(b)
}

// POSIX ACLs in a layer reach the ext4 image in ext4's own form, which
// e2fsprogs decodes back to the same entries; a malformed one is dropped.
func TestPullKeepsPOSIXACLs(t *testing.T) {
	requireE2fs(t)
	reg := newRegistry(t, nil)
	const undefined = 0xffffffff
	acl := aclXattr(
		[3]uint32{aclUserObj, 7, undefined},
		[3]uint32{aclUser, 6, 1000},
		[3]uint32{aclGroupObj, 4, undefined},
		[3]uint32{aclGroup, 4, 50},
		[3]uint32{aclMask, 6, undefined},
		[3]uint32{aclOther, 0, undefined},
	)
	def := aclXattr(
		[3]uint32{aclUserObj, 7, undefined},
		[3]uint32{aclGroupObj, 5, undefined},
		[3]uint32{aclOther, 5, undefined},
	)
	layer := layerOf(t,
		dir("srv"),
		ent{name: "srv/shared", typ: tar.TypeDir, mode: 0o775, xattrs: map[string]string{aclAccess: acl, aclDefault: def}},
		ent{name: "srv/shared/doc", body: "acl'd", mode: 0o660, xattrs: map[string]string{aclAccess: acl}},
		ent{name: "srv/broken", body: "bad acl", mode: 0o644, xattrs: map[string]string{aclAccess: "\x02\x00\x00\x00\x01"}},
	)
	ref := reg.Push(t, "test/acl:v1", imageOf(t, layer))
	_, res, err := pullInto(t, newPuller(t), ref, BuildOptions{})
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	fsckClean(t, res.Path)

	// On disk: ext4's form (version 1, short entries for the owner,
	// group, mask and other tags).
	ext4Form := "01 00 00 00 01 00 07 00 02 00 06 00 e8 03 00 00 04 00 04 00 08 00 04 00 32 00 00 00 10 00 06 00 20 00 00 00"
	if doc := debugfs(t, res.Path, "ea_list /srv/shared/doc"); !strings.Contains(doc, "system.posix_acl_access (36) = "+ext4Form) {
		t.Errorf("ea_list /srv/shared/doc, want the ACL in ext4's form %s:\n%s", ext4Form, doc)
	}
	if shared := debugfs(t, res.Path, "ea_list /srv/shared"); !strings.Contains(shared, "system.posix_acl_default (16) = 01 00 00 00 01 00 07 00 04 00 05 00 20 00 05 00") {
		t.Errorf("ea_list /srv/shared (default ACL):\n%s", shared)
	}
	if broken := debugfs(t, res.Path, "ea_list /srv/broken"); strings.Contains(broken, "posix_acl") {
		t.Errorf("a malformed ACL was written:\n%s", broken)
	}

	// And the kernel reads it back as the ACL the layer carried.
	mnt := mountRO(t, res.Path)
	for path, want := range map[string]string{"srv/shared/doc": acl, "srv/shared": acl} {
		got := make([]byte, 256)
		n, err := unix.Getxattr(filepath.Join(mnt, path), aclAccess, got)
		if err != nil || string(got[:n]) != want {
			t.Errorf("the kernel reads %s's ACL as %x (%v), want %x", path, got[:max(n, 0)], err, want)
		}
	}
	got := make([]byte, 256)
	if n, err := unix.Getxattr(filepath.Join(mnt, "srv/shared"), aclDefault, got); err != nil || string(got[:n]) != def {
		t.Errorf("the kernel reads srv/shared's default ACL as %x (%v), want %x", got[:max(n, 0)], err, def)
	}
}

// mountRO loop-mounts an ext4 image read-only (root only; skips otherwise).
func mountRO(t *testing.T, img string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting the image to read its ACLs through the kernel needs root")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "ext4", "-o", "loop,ro,noload", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot loop-mount the image: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("unmounting %s: %v: %s", mnt, err, out)
		}
	})
	return mnt
}
