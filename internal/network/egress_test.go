package network

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseEgressPolicy(t *testing.T) {
	for _, tc := range []struct {
		mode  string
		allow []string
		want  EgressPolicy
		err   string
	}{
		{mode: "", want: EgressPolicy{Mode: EgressFull}},
		{mode: "NONE", want: EgressPolicy{Mode: EgressNone}},
		{mode: "allow", allow: []string{"Registry.NPMjs.org.", "*.pypi.org", "203.0.113.7", "198.51.100.0/24", "registry.npmjs.org"},
			want: EgressPolicy{Mode: EgressAllow, Allow: []string{"*.pypi.org", "198.51.100.0/24", "203.0.113.7/32", "registry.npmjs.org"}}},
		{mode: "allow", allow: []string{"10.1.2.3/8"}, want: EgressPolicy{Mode: EgressAllow, Allow: []string{"10.0.0.0/8"}}},
		{mode: "open", err: `network policy "open" is not one of full, none, allow`},
		{mode: "full", allow: []string{"a.test"}, err: "--allow needs --network allow"},
		{mode: "allow", allow: []string{"*.org"}, err: "at least two labels"},
		{mode: "allow", allow: []string{"a..b"}, err: "not a DNS name"},
		{mode: "allow", allow: []string{"evil\x1b[2J.test"}, err: "not a DNS name"},
		{mode: "allow", allow: []string{"2001:db8::/32"}, err: "only IPv4"},
		{mode: "allow", allow: []string{"300.1.1.1/8"}, err: "not an IPv4 address or CIDR"},
		{mode: "allow", allow: []string{strings.Repeat("a", 64) + ".test"}, err: "not a DNS name"},
	} {
		got, err := ParseEgressPolicy(tc.mode, tc.allow, false)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseEgressPolicy(%q, %q) = %v, want an error with %q", tc.mode, tc.allow, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseEgressPolicy(%q, %q): %v", tc.mode, tc.allow, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseEgressPolicy(%q, %q) (-want +got):\n%s", tc.mode, tc.allow, diff)
		}
	}
	many := make([]string, maxAllowEntries+1)
	for i := range many {
		many[i] = "a.test"
	}
	if _, err := ParseEgressPolicy("allow", many, false); err == nil {
		t.Error("a policy with too many entries was accepted")
	}
}

func TestEgressAllowsName(t *testing.T) {
	p, err := ParseEgressPolicy("allow", []string{"allowed.test", "*.npmjs.org", "10.0.0.1"}, false)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{
		"allowed.test": true, "ALLOWED.test.": true, "www.allowed.test": false, "denied.test": false,
		"registry.npmjs.org": true, "a.b.npmjs.org": true, "npmjs.org": false, "evilnpmjs.org": false,
		"10.0.0.1": false, "": false,
	} {
		if got := p.AllowsName(name); got != want {
			t.Errorf("AllowsName(%q) = %v, want %v", name, got, want)
		}
	}
}

// An interval set refuses overlapping elements, so a CIDR inside another
// on the list is left out of the set (the outer one covers it).
func TestPrefixesLeaveOutNestedOnes(t *testing.T) {
	p, err := ParseEgressPolicy("allow", []string{"203.0.113.7", "203.0.113.0/24", "198.51.100.0/25", "198.51.100.128/25", "registry.npmjs.org"}, false)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, pr := range p.Prefixes() {
		got = append(got, pr.String())
	}
	if want := "198.51.100.0/25 198.51.100.128/25 203.0.113.0/24"; strings.Join(got, " ") != want {
		t.Errorf("Prefixes = %v, want %s", got, want)
	}
}

// The rule comment stays within the kernel's 256 bytes whatever the list.
func TestVMCommentIsShort(t *testing.T) {
	var allow []string
	for i := range maxAllowEntries {
		allow = append(allow, "registry"+strings.Repeat("x", 40)+string(rune('a'+i%26))+".example.org")
	}
	p, err := ParseEgressPolicy("allow", allow, false)
	if err != nil {
		t.Fatal(err)
	}
	if c := vmComment(VMEgress{Addr: netip.MustParseAddr("172.16.0.200"), Policy: p}); len(c) > 128 {
		t.Errorf("comment of %d bytes: %q", len(c), c)
	}
}
