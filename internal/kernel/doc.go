// Package kernel manages the kernels bangerd stores: it reads kernel
// catalogs (a JSON index of downloadable kernels, see
// docs/kernel-catalog.md), pulls catalog entries into a local directory and
// removes them again.
//
// Layout under the kernels root (for example ~/.local/state/banger/kernels):
//
//	<name>/vmlinux            the kernel, verified against the catalog sha256
//	<name>/initrd             optional
//	<name>/modules/<release>/ optional, unpacked modules tarball
//	.partial/<name>/          downloads in progress, kept so a retry resumes
//	.staging-<name>-*/        a kernel being assembled; renamed to <name>
//
// A kernel directory only appears by an atomic rename of a complete staging
// directory, so <name> is either absent or whole. Leftover staging
// directories are removed by CleanStaging when the daemon starts.
package kernel
