// Package deps pins modules that packages under construction will import,
// so parallel work does not race on go.mod. Remove an import once a real
// package uses the module.
package deps

import (
	_ "github.com/Microsoft/hcsshim/ext4/tar2ext4"
	_ "github.com/creack/pty"
	_ "github.com/google/go-containerregistry/pkg/registry"
	_ "github.com/google/go-containerregistry/pkg/v1/remote"
	_ "github.com/google/nftables"
	_ "github.com/hashicorp/yamux"
	_ "github.com/mdlayher/vsock"
	_ "github.com/miekg/dns"
	_ "github.com/pkg/sftp"
	_ "github.com/vishvananda/netlink"
	_ "github.com/vishvananda/netns"
)
