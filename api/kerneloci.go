package api

// KernelPullRequest is the body of POST /v1/kernels/pull: a kernel from an
// OCI registry (see docs/kernel-catalog.md).
type KernelPullRequest struct {
	Ref string `json:"ref"`
	// Name stores the kernel under another name than the artifact's.
	Name     string `json:"name,omitempty"`
	Insecure bool   `json:"insecure,omitempty"`
}

// KernelPublishRequest is the body of POST /v1/kernels/{name}/publish.
// Without Kernel, the pulled kernel of that name is published; with it,
// these host files are, under that name.
type KernelPublishRequest struct {
	Ref         string `json:"ref"`
	Insecure    bool   `json:"insecure,omitempty"`
	Kernel      string `json:"kernel,omitempty"`
	Initrd      string `json:"initrd,omitempty"`
	Modules     string `json:"modules,omitempty"` // a directory: the modules tree
	Config      string `json:"config,omitempty"`  // a kernel config fragment
	Version     string `json:"version,omitempty"`
	Description string `json:"description,omitempty"`
}

// KernelPublished is what a publish pushed.
type KernelPublished struct {
	Name string `json:"name"`
	// Ref is the artifact by digest.
	Ref string `json:"ref"`
}

// KernelTags lists the tags of a kernel repository.
type KernelTags struct {
	Repository string   `json:"repository"`
	Tags       []string `json:"tags"`
}
