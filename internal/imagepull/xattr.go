package imagepull

import (
	"archive/tar"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/url"
	"strings"
)

const (
	paxXattr        = "SCHILY.xattr."
	paxLibarchive   = "LIBARCHIVE.xattr."
	aclAccess       = "system.posix_acl_access"
	aclDefault      = "system.posix_acl_default"
	xattrEntryExtra = 16 // ext4_xattr_entry header
)

// xattrRecords returns hdr's extended attributes as SCHILY.xattr PAX
// records, the form tar2ext4 reads. Namespaces the guest kernel would
// not expect from an image are dropped: system.* other than POSIX ACLs
// (system.data is ext4's own) and trusted.overlay.* (overlayfs state).
// POSIX ACLs are converted from the xattr API form tar carries to the
// form ext4 stores on disk.
func xattrRecords(hdr *tar.Header) (map[string]string, error) {
	var out map[string]string
	size := 0
	for k, v := range hdr.PAXRecords {
		var name string
		switch {
		case strings.HasPrefix(k, paxXattr):
			name = k[len(paxXattr):]
		case strings.HasPrefix(k, paxLibarchive):
			n, err := url.PathUnescape(k[len(paxLibarchive):])
			b, err2 := base64.StdEncoding.DecodeString(v)
			if err != nil || err2 != nil {
				continue
			}
			name, v = n, string(b)
		default:
			continue
		}
		if name == aclAccess || name == aclDefault {
			acl, ok := ext4ACL([]byte(v))
			if !ok {
				continue
			}
			v = string(acl)
		} else if !keepXattr(name) {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[paxXattr+name] = v
		size += (len(name)+3)&^3 + xattrEntryExtra + (len(v)+3)&^3
	}
	if size > maxXattrSize {
		return nil, fmt.Errorf("extended attributes take %d bytes; ext4 holds at most %d per file", size, maxXattrSize)
	}
	return out, nil
}

func keepXattr(name string) bool {
	switch {
	case strings.HasPrefix(name, "trusted.overlay."):
		return false
	case strings.HasPrefix(name, "user."), strings.HasPrefix(name, "security."), strings.HasPrefix(name, "trusted."):
		return len(name) < 256
	}
	return false
}

// POSIX ACL tags (linux/posix_acl.h).
const (
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20
)

// ext4ACL converts an ACL from the xattr API form (version 2, 8-byte
// entries) to ext4's on-disk form (version 1, 4-byte entries for the
// owner/group/mask/other tags, 8-byte entries for named users/groups).
func ext4ACL(v []byte) ([]byte, bool) {
	if len(v) < 4 || binary.LittleEndian.Uint32(v) != 2 || (len(v)-4)%8 != 0 {
		return nil, false
	}
	out := binary.LittleEndian.AppendUint32(nil, 1)
	for e := v[4:]; len(e) > 0; e = e[8:] {
		tag, perm, id := binary.LittleEndian.Uint16(e), binary.LittleEndian.Uint16(e[2:]), binary.LittleEndian.Uint32(e[4:])
		out = binary.LittleEndian.AppendUint16(out, tag)
		out = binary.LittleEndian.AppendUint16(out, perm)
		switch tag {
		case aclUserObj, aclGroupObj, aclMask, aclOther:
		case aclUser, aclGroup:
			out = binary.LittleEndian.AppendUint32(out, id)
		default:
			return nil, false
		}
	}
	return out, true
}
