package cli

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"banger/api"
	"banger/api/errdefs"
	"banger/internal/bytesize"
)

func (a *app) imagePullCmd() *cobra.Command {
	var req api.PullImageRequest
	var size string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "pull REF [--name NAME] [--size SIZE] [--kernel-ref NAME | --kernel PATH]",
		Short: "Pull an OCI image from a registry into a bootable managed image",
		Long: `Pull an image from any OCI or Docker registry and turn it into a managed image:
an ext4 root filesystem built without root that keeps owners, modes, xattrs,
links and device nodes, plus the kernel it boots with.

The image matching this host's architecture is pulled. Credentials come from
your docker config ($DOCKER_CONFIG or ~/.docker/config.json, as written by
'docker login'). Layers are cached under ~/.cache/banger/oci and shared
between pulls; pulling a digest banger already has is instant.

The kernel is a pulled catalog kernel (--kernel-ref, or default_kernel_ref in
the config) or host files copied into the image (--kernel, --initrd, --modules).
The root filesystem gets the image's content plus headroom (at least 1 GiB)
unless --size says otherwise; its file is sparse.`,
		Example: `  banger image pull debian:bookworm --kernel-ref debian-6.1
  banger image pull ghcr.io/org/devbox:2024-06 --name devbox --size 8G
  banger image pull localhost:5000/dev/img:latest --kernel /boot/vmlinux --initrd /boot/initrd.img`,
		Args: exactArgs(1, "an image reference such as debian:bookworm"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Ref = args[0]
			if size != "" {
				n, err := parseSize(size)
				if err != nil {
					return err
				}
				req.Size = n
			}
			for _, p := range []*string{&req.Kernel, &req.Initrd, &req.Modules} {
				if *p != "" {
					abs, err := filepath.Abs(*p)
					if err != nil {
						return err
					}
					*p = abs
				}
			}
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			pv := newProgressView(a.stderr)
			present := ""
			im, err := cl.PullImage(cmd.Context(), req, func(ev api.Event) {
				if ev.Step == "present" {
					present = ev.Message
				}
				pv.Event(ev)
			})
			pv.Close()
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, im)
			}
			if present != "" {
				fmt.Fprintf(a.stdout, "image %s is up to date (%s)\n", im.Name, safe(im.Digest))
				return nil
			}
			fmt.Fprintf(a.stdout, "pulled image %s (%s, rootfs %s)\n", im.Name, safe(im.Digest), bytesize.Format(im.Size))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Name, "name", "", "image name (a DNS label); default derived from REF, e.g. debian-bookworm")
	f.StringVar(&size, "size", "", "root filesystem size, e.g. 4G or 512M; default: content plus headroom")
	f.StringVar(&req.Platform, "platform", "", "os/arch[/variant] to pull; default linux on this host's arch")
	f.BoolVar(&req.Insecure, "insecure", false, "allow plain HTTP or self-signed TLS (loopback and private-network registries only)")
	f.StringVar(&req.KernelRef, "kernel-ref", "", "name of a pulled kernel to boot with (see 'banger kernel list'); default: default_kernel_ref")
	f.StringVar(&req.Kernel, "kernel", "", "path of a kernel (vmlinux or bzImage) to copy into the image")
	f.StringVar(&req.Initrd, "initrd", "", "path of an initrd to copy into the image (with --kernel)")
	f.StringVar(&req.Modules, "modules", "", "directory of kernel modules to copy into the image (with --kernel)")
	f.BoolVar(&asJSON, "json", false, "print the image as JSON")
	cmd.MarkFlagsMutuallyExclusive("kernel", "kernel-ref")
	return cmd
}

// parseSize reads a byte size: a number with an optional K, M, G or T
// suffix (powers of 1024; "iB" and "B" are accepted too).
func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := int64(1)
	if n := len(t); n > 0 {
		if i := strings.IndexByte("KMGT", t[n-1]); i >= 0 {
			mult = int64(1) << (10 * (i + 1))
			t = t[:n-1]
		}
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || n <= 0 || n*float64(mult) > 1<<62 {
		return 0, errdefs.Invalid("--size %q is not a size; write it like 4G, 512M or 2.5GiB", s)
	}
	return int64(n * float64(mult)), nil
}
