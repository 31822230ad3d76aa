// Package imagepull turns an OCI image from a registry into a bootable
// ext4 root filesystem, without root and without mounting anything.
//
// The pipeline has three stages, each in its own file:
//
//   - pull.go resolves a reference (platform pinned to the host's arch,
//     credentials from the docker config) and makes sure the config and
//     every layer blob are in a Cache: an OCI image layout shared by all
//     pulls, written atomically and verified by digest, so an interrupted
//     pull leaves nothing half-written and a second pull downloads
//     nothing it already has.
//   - flatten.go replays the layers oldest first into an in-memory tree,
//     applying whiteouts and opaque directories, and emits that tree as
//     one tar stream in which every directory precedes its children and
//     every hardlink follows its target. Layer data is decompressed once,
//     in parallel, into spool files in the build directory.
//   - ext4.go writes the stream as ext4 with tar2ext4 (pure Go; uid/gid,
//     modes, xattrs, device nodes and hardlinks survive because nothing
//     touches the host filesystem), then lets e2fsprogs make it a normal
//     writable filesystem: e2fsck, clear read-only, resize2fs to the
//     requested or a content-aware size, add a journal.
//
// Layers are hostile input. Every entry is confined to the image root:
// ".." that climbs out and hardlinks to outside targets are rejected,
// absolute names are taken relative to the root, a symlink met as a
// parent directory is followed inside the tree and never outside it,
// relative symlink targets that climb above the root are rewritten to
// the path they reach inside it, whiteouts apply only inside the tree,
// and device nodes only ever become ext4 inodes. Sizes are bounded by
// the free disk space and by the requested size. Registries are not
// trusted either: the missing blobs must fit in the cache's free space
// before any is fetched, and a blob is read no further than one byte
// past its manifest size. Nothing is written outside the build
// directory except verified blobs in the cache.
//
// A pull, end to end:
//
//	p, _ := imagepull.New(imagepull.Options{CacheDir: layout.OCICacheDir})
//	r, _ := p.Resolve(ctx, "debian:bookworm", imagepull.ResolveOptions{})
//	img, _ := p.Fetch(ctx, r, progressFunc)
//	res, _ := imagepull.Build(ctx, img.Layers, imagepull.BuildOptions{
//		Dir:   stagingDir,   // rootfs.ext4 and scratch files go here
//		Extra: agentFiles,   // e.g. the guest agent and its unit
//	})
package imagepull
