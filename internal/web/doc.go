// Package web is banger's localhost web UI: VMs with live state and
// CPU/memory sparklines, images, kernels, sessions with live log tails and
// the event log, plus start/stop/delete with confirmation. It wraps the
// same daemon service as the API server; pages are rendered on the server
// (html/template) and a small embedded script keeps them live over
// server-sent events. Everything is embedded: the UI works offline.
//
// The UI can act on VMs, so it is built to be safe to leave on:
//
//   - it listens on loopback unless the user configures otherwise;
//   - every request but those for the embedded static files needs the
//     user's secret (a token in a 0600 file): once in the URL, which sets
//     an HttpOnly, SameSite=Strict cookie, then as that cookie, since
//     every local user can reach loopback;
//   - requests whose Host header names anything but the configured address,
//     localhost or a loopback IP are refused, which defeats DNS rebinding
//     (a hostile page cannot pass a name it controls as Host);
//   - state-changing requests must come from the UI itself: a same-origin
//     check (Sec-Fetch-Site, else Origin against Host, via
//     http.CrossOriginProtection) and a CSRF token bound to a SameSite=Strict
//     cookie by HMAC under a key that never leaves the process;
//   - every response carries a strict Content-Security-Policy (no inline
//     script or style), X-Frame-Options DENY, nosniff and no-referrer;
//   - nothing secret is rendered: no keys, host keys, auth files or config.
package web
