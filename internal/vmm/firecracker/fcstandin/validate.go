package fcstandin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode"
)

// Fault is an error answer: the HTTP status and Firecracker's
// fault_message.
type Fault struct {
	Status  int
	Message string

	exit bool // the VMM exits once it has answered (a failed snapshot load)
}

func (f *Fault) Error() string { return fmt.Sprintf("%d: %s", f.Status, f.Message) }

// Body is the JSON of the answer: {"fault_message": "..."}, as Firecracker
// sends it.
func (f *Fault) Body() []byte {
	data, _ := json.Marshal(map[string]string{"fault_message": f.Message})
	return data
}

func badRequest(format string, args ...any) *Fault {
	return &Fault{Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

// deserializing wraps a body error the way Firecracker reports serde's.
func deserializing(msg string) *Fault {
	return badRequest("An error occurred when deserializing the json body of a request: %s.", msg)
}

// Request is a validated request.
type Request struct {
	Op     *Operation
	Params map[string]string // path parameters: drive_id -> rootfs
	Body   *Value            // nil without a body
}

// Validate checks a request the way Firecracker's API server parses one:
// the method and path must name an operation, path ids must be non-empty
// alphanumerics and '_', a body must be present exactly when the
// operation takes one and must parse as its schema (JSON syntax, no
// unknown or duplicate fields, no missing required ones, right types and
// integer ranges, enum values: serde_json's errors, with their position),
// an id in the path must equal the same id in the body, and numbers must
// be within the spec's bounds.
func (s *Spec) Validate(method, path string, body []byte) (*Request, *Fault) {
	op, params := s.match(method, path)
	if op == nil {
		first, _, _ := strings.Cut(strings.TrimLeft(path, "/"), "/")
		return nil, badRequest("Invalid request method and/or path: %s %s.", method, first)
	}
	hasBody := len(bytes.TrimSpace(body)) > 0
	switch {
	case method == http.MethodGet && hasBody:
		return nil, badRequest("GET request cannot have a body.")
	// Firecracker refuses every body-less PUT, whatever the spec says
	// about the body being required, and body-less PATCHes that need one.
	case method == http.MethodPut && !hasBody,
		method == http.MethodPatch && !hasBody && op.BodyRequired:
		return nil, badRequest("Empty %s request.", method)
	case op.Body == nil && hasBody:
		return nil, badRequest("Invalid request method and/or path: %s %s.", method, path)
	}
	for _, v := range params {
		if v == "" {
			return nil, badRequest("The ID cannot be empty.")
		}
		for _, r := range v {
			if r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
				return nil, badRequest("API Resource IDs can only contain alphanumeric characters and underscores.")
			}
		}
	}
	req := &Request{Op: op, Params: params}
	if !hasBody {
		return req, nil
	}
	v, perr := parseBody(body, op.Body)
	if perr != nil {
		return nil, deserializing(perr.message(body))
	}
	if check := bodyChecks[op.ID]; check != nil {
		if msg := check(v); msg != "" {
			return nil, deserializing(msg)
		}
	}
	for name, id := range params {
		if v.Kind == KindObject {
			if got, ok := v.Field(name); ok && got.Kind == KindString && got.Str != id {
				return nil, badRequest("The id from the path does not match the id from the body!")
			}
		}
	}
	if f := checkBounds(op.Body, v, ""); f != nil {
		return nil, f
	}
	req.Body = v
	return req, nil
}

// match finds the operation for method and path, with its parameters.
func (s *Spec) match(method, path string) (*Operation, map[string]string) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if strings.Trim(path, "/") == "" {
		segs = nil
	}
	for _, op := range s.ops {
		if op.Method != method || len(op.segs) != len(segs) {
			continue
		}
		params := map[string]string{}
		ok := true
		for i, t := range op.segs {
			if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") {
				params[strings.Trim(t, "{}")] = segs[i]
			} else if t != segs[i] {
				ok = false
				break
			}
		}
		if ok {
			return op, params
		}
	}
	// "PUT /drives/" has an empty id: Firecracker says so, not "unknown path".
	if strings.HasSuffix(path, "/") {
		if op, params := s.match(method, path+"{}"); op != nil {
			for k := range params {
				params[k] = ""
			}
			return op, params
		}
	}
	return nil, nil
}

// bodyChecks are what Firecracker's API server checks in a parsed body
// before the VMM sees it, by operation id; a failure is reported as a
// deserialization error (serde_json's custom error, without a position).
var bodyChecks = map[string]func(*Value) string{"loadSnapshot": checkLoadBody}

// checkBounds enforces the spec's minimum and maximum once the body has
// parsed, as Firecracker's own checks run after serde's. Firecracker
// answers a bound it checks itself in its own words (see checkedByVMM);
// other bounds get the stand-in's message.
func checkBounds(s *Schema, v *Value, at string) *Fault {
	if s == nil || v == nil {
		return nil
	}
	switch v.Kind {
	case KindArray:
		for i, item := range v.Items {
			if f := checkBounds(s.Items, item, fmt.Sprintf("%s[%d]", at, i)); f != nil {
				return f
			}
		}
	case KindObject:
		for _, m := range v.Members {
			p, known := s.Properties[m.Key]
			if !known {
				p = s.Extra
			}
			if known && checkedByVMM[m.Key] {
				continue
			}
			if f := checkBounds(p, m.Value, join(at, m.Key)); f != nil {
				return f
			}
		}
	case KindNumber:
		n, _ := strconv.ParseFloat(v.Num, 64)
		if s.Minimum != nil && n < *s.Minimum {
			return badRequest("Invalid value for %s: %s is less than the minimum %v.", field(at), v.Num, *s.Minimum)
		}
		if s.Maximum != nil && n > *s.Maximum {
			return badRequest("Invalid value for %s: %s is more than the maximum %v.", field(at), v.Num, *s.Maximum)
		}
	}
	return nil
}

// checkedByVMM are fields whose spec bounds Firecracker enforces with a
// message of its own (the machine's, the stand-in's machine.apply), not
// in deserialization.
var checkedByVMM = map[string]bool{"vcpu_count": true}

// oneOf lists names the way serde does: `a`, `a` or `b`, one of `a`, `b`, `c`.
func oneOf(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = "`" + n + "`"
	}
	switch len(q) {
	case 0:
		return "nothing"
	case 1:
		return q[0]
	case 2:
		return q[0] + " or " + q[1]
	}
	return "one of " + strings.Join(q, ", ")
}

func field(at string) string {
	if at == "" {
		return "the body"
	}
	return "`" + at + "`"
}

func join(at, key string) string {
	if at == "" {
		return key
	}
	return at + "." + key
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
