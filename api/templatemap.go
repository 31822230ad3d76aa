package api

import "time"

// TemplateMapFailure says why a template's memory is not mapped into a
// file its warm creates share (docs/snapshots.md, "Templates saved
// before their memory was mapped"): until it is, they read the whole
// saved stream, which is slower.
type TemplateMapFailure struct {
	// Error is the last failure's (at most 4 KiB, from the VMM: escape
	// it before a terminal shows it).
	Error string `json:"error"`
	// Attempts counts the failures with this banger version, the
	// transient ones aside.
	Attempts int `json:"attempts"`
	// Transient marks a last failure that was the machine's at the time
	// (a full disk, no TAP to lend), not counted in Attempts.
	Transient bool `json:"transient,omitempty"`
	// Retry tells whether the next daemon start tries again; when false,
	// only another banger version does, or removing the record
	// (map-failed.json in the template's directory).
	Retry bool      `json:"retry"`
	At    time.Time `json:"at"`
}
