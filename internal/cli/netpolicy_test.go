package cli

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"

	"banger/api"
)

func TestNetworkFlagsPolicy(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want *api.NetworkPolicy
	}{
		{nil, nil}, // the daemon applies default_network_policy
		{[]string{"--network", "none"}, &api.NetworkPolicy{Mode: "none"}},
		{[]string{"--allow", "a.test", "--allow", "10.0.0.0/8"}, &api.NetworkPolicy{Mode: "allow", Allow: []string{"a.test", "10.0.0.0/8"}}},
		{[]string{"--network", "full", "--allow-lan"}, &api.NetworkPolicy{Mode: "full", AllowLAN: true}},
		{[]string{"--allow-lan"}, &api.NetworkPolicy{AllowLAN: true}},
	} {
		var nf networkFlags
		f := pflag.NewFlagSet("t", pflag.ContinueOnError)
		nf.add(f)
		if err := f.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, nf.policy(f)); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tc.args, diff)
		}
	}
}

func TestNetworkRows(t *testing.T) {
	got := networkRows(api.VM{Network: &api.NetworkPolicy{Mode: "allow", Allow: []string{"a.test", "*.b.test"}}})
	want := [][]string{{"network:", "allow: a.test, *.b.test"}, {"", "private and link-local ranges, other VMs and the host denied"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if rows := networkRows(api.VM{}); rows != nil {
		t.Errorf("rows without a policy: %q", rows)
	}
}
