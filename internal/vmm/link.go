package vmm

import "context"

// LinkSetter is implemented by drivers that can take a VM's network link
// down and bring it up again from the host side. While the link is down
// nothing the guest sends leaves the VMM, and the guest sees no carrier.
// A fork is resumed with its link down, so that it says nothing on the
// network as its parent (same MAC, same address, ARP answers, TCP
// retransmits) before its agent gives it its own identity. Setting the
// link to the state it has is no error.
type LinkSetter interface {
	SetLink(ctx context.Context, h *Handle, up bool) error
}
