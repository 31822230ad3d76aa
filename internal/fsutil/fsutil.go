// Package fsutil holds the small helpers of every writer of durable
// artifacts: making a rename or a new file durable by syncing its
// directory, and random suffixes for temporary names and IDs.
package fsutil

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
)

// SyncDir makes a directory's entries durable: without it a crash can
// lose a rename or a newly created file even though the data was synced.
func SyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

// RandomHex returns 8 random hexadecimal characters.
func RandomHex() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
