package config

import "fmt"

// maxID is the largest Linux user or group id; 2^32-1 means "none".
const maxID = 1<<32 - 2

func checkID(id int) error {
	if id < 0 || id > maxID {
		return fmt.Errorf("%d is not a user or group id; use a number from 0 to %d", id, maxID)
	}
	return nil
}

// jailerIDCheck requires an unprivileged id for key when the jailer is on:
// the jailer refuses nothing, but a Firecracker left as root defeats it.
func jailerIDCheck(key, what string, ptr func(*Config) *int) crossCheck {
	return crossCheck{key: key, other: "firecracker_jailer", check: func(c Config) error {
		if id := *ptr(&c); c.FirecrackerJailer && id == 0 {
			return fmt.Errorf("0 is root's %s, and firecracker_jailer is on; set %s to an unprivileged %s for Firecracker to run as, such as %s = 900", what, key, what, key)
		}
		return nil
	}}
}
