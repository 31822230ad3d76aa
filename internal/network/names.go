package network

import (
	"strconv"
	"strings"
)

// ifNameMax is IFNAMSIZ less the terminating NUL.
const ifNameMax = 15

// tapPrefixMax keeps room for "-tap255" (the largest pool is 256 TAPs).
const tapPrefixMax = ifNameMax - len("-tap255")

// TapName names TAP i of the pool that belongs to bridge: the bridge name
// cut to 8 bytes, then "-tap" and the index ("banger0-tap0" ...
// "banger0-tap255"). Every TAP of a pool shares the prefix, so banger's TAPs
// are recognisable next to the bridge in 'ip link', and the longest name
// fits IFNAMSIZ.
func TapName(bridge string, i int) string {
	return tapPrefix(bridge) + strconv.Itoa(i)
}

// TapNames lists the n TAP names of bridge's pool in order.
func TapNames(bridge string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = TapName(bridge, i)
	}
	return out
}

func tapPrefix(bridge string) string {
	if len(bridge) > tapPrefixMax {
		bridge = bridge[:tapPrefixMax]
	}
	return bridge + "-tap"
}

// tapIndex reports whether name is a TAP name of bridge's pool, and its index.
func tapIndex(bridge, name string) (int, bool) {
	digits, ok := strings.CutPrefix(name, tapPrefix(bridge))
	if !ok || digits == "" || (len(digits) > 1 && digits[0] == '0') {
		return 0, false
	}
	i, err := strconv.Atoi(digits)
	if err != nil || i < 0 {
		return 0, false
	}
	return i, true
}
