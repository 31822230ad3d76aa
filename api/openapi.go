package api

import _ "embed"

// OpenAPI is the OpenAPI 3 document of the daemon's API (openapi.yaml in
// this package), served by the daemon at OpenAPIPath. Other languages can
// generate clients from it; docs/api.md says how to use it.
//
//go:embed openapi.yaml
var OpenAPI []byte

// OpenAPIPath is where the daemon serves OpenAPI on its socket.
const OpenAPIPath = "/" + Version + "/openapi.yaml"
