package api

// Copies between the host and a guest (banger vm cp) stream tar archives:
//
//	GET /v1/vms/{name}/files?path=P        a tar of the guest file or
//	                                        directory P, entries named from
//	                                        P's base name; trailers
//	                                        Banger-Copy-Error (a JSON Error),
//	                                        Banger-Copy-Entries and
//	                                        Banger-Copy-Bytes say how it ended
//	PUT /v1/vms/{name}/files?path=DIR      the request body is a tar,
//	                                        extracted under the guest
//	                                        directory DIR (created when
//	                                        missing); answers a CopyResult
//	GET /v1/vms/{name}/files/stat?path=P   a PathStat

// CopyResult is how a copy ended.
type CopyResult struct {
	Entries int   `json:"entries"`
	Bytes   int64 `json:"bytes"` // regular file content
}

// PathStat says what is at a guest path.
type PathStat struct {
	Path string `json:"path"`
	// Kind is "dir", "file" (anything else that exists, symlinks
	// included) or "none".
	Kind string `json:"kind"`
}

// Path kinds of PathStat.
const (
	PathDir  = "dir"
	PathFile = "file"
	PathNone = "none"
)

// Trailers of GET /v1/vms/{name}/files.
const (
	TrailerCopyError   = "Banger-Copy-Error"
	TrailerCopyEntries = "Banger-Copy-Entries"
	TrailerCopyBytes   = "Banger-Copy-Bytes"
)
