// Package errdefs defines the few kinds of error the daemon reports.
//
// Core packages wrap one of the sentinels; the server maps kinds to HTTP
// status in exactly one place and the client maps them back, so
// errors.Is(err, errdefs.ErrNotFound) holds on both sides of the socket.
package errdefs

import (
	"context"
	"errors"
	"fmt"
)

// Kind names an error class on the wire.
type Kind string

// The kinds, each with its HTTP status (the server maps them in one
// place; api/openapi.yaml lists them as ErrorKind).
const (
	KindNotFound    Kind = "not_found"   // 404: no such VM, image, kernel, session or route
	KindConflict    Kind = "conflict"    // 409: the thing exists, is in use, or is in the wrong state
	KindInvalid     Kind = "invalid"     // 400: the request is wrong; the message says how
	KindUnsupported Kind = "unsupported" // 501: this host, VMM or image cannot do it
	KindUnavailable Kind = "unavailable" // 503: the daemon, a VM or its agent is not answering
	KindCanceled    Kind = "canceled"    // 499: the caller went away
	KindInternal    Kind = "internal"    // 500: anything else
)

// The sentinels of the kinds: errors.Is(err, ErrNotFound) holds for an
// error of kind not_found, in the daemon and, after the client maps a
// reply back, in a caller (canceled maps to context.Canceled, internal to
// no sentinel).
var (
	ErrNotFound    = errors.New("not found")   // KindNotFound
	ErrConflict    = errors.New("conflict")    // KindConflict
	ErrInvalid     = errors.New("invalid")     // KindInvalid
	ErrUnsupported = errors.New("unsupported") // KindUnsupported
	ErrUnavailable = errors.New("unavailable") // KindUnavailable
)

// kindError carries a user-facing message and a kind sentinel.
type kindError struct {
	kind error
	msg  string
	err  error // optional cause, wrapped with %w in the message
}

// Error is the formatted message, which already includes any %w cause.
func (e *kindError) Error() string { return e.msg }

func (e *kindError) Unwrap() []error {
	if e.err != nil {
		return []error{e.kind, e.err}
	}
	return []error{e.kind}
}

func newf(kind error, format string, a ...any) error {
	err := fmt.Errorf(format, a...)
	return &kindError{kind: kind, msg: err.Error(), err: errors.Unwrap(err)}
}

// NotFound returns an error of kind not_found with a formatted message.
func NotFound(format string, a ...any) error { return newf(ErrNotFound, format, a...) }

// Conflict returns an error of kind conflict.
func Conflict(format string, a ...any) error { return newf(ErrConflict, format, a...) }

// Invalid returns an error of kind invalid.
func Invalid(format string, a ...any) error { return newf(ErrInvalid, format, a...) }

// Unsupported returns an error of kind unsupported.
func Unsupported(format string, a ...any) error { return newf(ErrUnsupported, format, a...) }

// Unavailable returns an error of kind unavailable.
func Unavailable(format string, a ...any) error { return newf(ErrUnavailable, format, a...) }

// KindOf classifies err.
func KindOf(err error) Kind {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrNotFound):
		return KindNotFound
	case errors.Is(err, ErrConflict):
		return KindConflict
	case errors.Is(err, ErrInvalid):
		return KindInvalid
	case errors.Is(err, ErrUnsupported):
		return KindUnsupported
	case errors.Is(err, ErrUnavailable):
		return KindUnavailable
	case errors.Is(err, context.Canceled):
		return KindCanceled
	default:
		return KindInternal
	}
}

// FromKind rebuilds an error of the given kind from a wire message.
func FromKind(kind Kind, msg string) error {
	var sentinel error
	switch kind {
	case KindNotFound:
		sentinel = ErrNotFound
	case KindConflict:
		sentinel = ErrConflict
	case KindInvalid:
		sentinel = ErrInvalid
	case KindUnsupported:
		sentinel = ErrUnsupported
	case KindUnavailable:
		sentinel = ErrUnavailable
	case KindCanceled:
		sentinel = context.Canceled
	default:
		return errors.New(msg)
	}
	return &kindError{kind: sentinel, msg: msg}
}
