package fcstandin

import (
	"math"
	"strconv"
	"strings"
)

// parser reads a request body against its schema in one pass, as
// Firecracker's serde_json::from_slice into its Rust types does, so that
// the first problem in the text is the one reported, in serde's words
// and at serde's position: unknown and duplicate fields right after the
// key, a wrong type or value right after the value, a missing field
// right after the object's '}'.
type parser struct{ scanner }

// parseBody parses data as a value of schema s.
func parseBody(data []byte, s *Schema) (*Value, *serdeError) {
	p := &parser{scanner{data: data}}
	v, err := p.value(s)
	if err != nil {
		return nil, err
	}
	if _, more := p.ws(); more {
		return nil, p.peekErr("trailing characters")
	}
	return v, nil
}

func (p *parser) value(s *Schema) (*Value, *serdeError) {
	c, ok := p.ws()
	if !ok {
		return nil, p.peekErr("EOF while parsing a value")
	}
	t := ""
	if s != nil {
		t = s.Type
	}
	switch {
	case t == "":
		return p.any(c)
	case t == "object" && c == '{':
		return p.object(s)
	case t == "array" && c == '[':
		return p.array(s)
	case t == "string" && len(s.Enum) > 0:
		return p.variant(s, c)
	case t == "string" && c == '"':
		return p.string(s)
	case t == "boolean" && (c == 't' || c == 'f'):
		return p.literal()
	case (t == "integer" || t == "number") && (c == '-' || isDigit(c)):
		return p.num(s)
	}
	return nil, p.invalidType(s, c)
}

// any reads a value of any type (an open map's, MMDS contents).
func (p *parser) any(c byte) (*Value, *serdeError) {
	switch {
	case c == '{':
		return p.object(&Schema{Type: "object", Open: true})
	case c == '[':
		return p.array(&Schema{Type: "array"})
	case c == '"':
		return p.string(nil)
	case c == '-' || isDigit(c):
		n, err := p.number()
		return &Value{Kind: KindNumber, Num: n}, err
	case c == 't' || c == 'f' || c == 'n':
		return p.literal()
	}
	return nil, p.peekErr("expected value")
}

// object reads a struct (no unknown or duplicate fields, every required
// one) or, for an open schema, a map.
func (p *parser) object(s *Schema) (*Value, *serdeError) {
	v := &Value{Kind: KindObject}
	seen := map[string]bool{}
	key := func(k string) *serdeError {
		_, known := s.Properties[k]
		switch {
		case !known && !s.Open:
			p.ws()
			return p.err("unknown field `" + k + "`, " + expectedNames(s.PropOrder, "fields"))
		case known && seen[k]:
			p.ws()
			return p.err("duplicate field `" + k + "`")
		}
		seen[k] = true
		return nil
	}
	value := func(k string) *serdeError {
		ps, known := s.Properties[k]
		if !known {
			ps = s.Extra
		}
		var x *Value
		var err *serdeError
		if c, _ := p.ws(); c == 'n' && known && !contains(s.Required, k) {
			x, err = p.literal() // an Option left out
		} else {
			x, err = p.value(ps)
		}
		if err != nil {
			return err
		}
		v.Members = append(v.Members, Member{k, x})
		return nil
	}
	if err := p.members(key, value); err != nil {
		return nil, err
	}
	for _, r := range s.Required {
		if !seen[r] {
			return nil, p.err("missing field `" + r + "`")
		}
	}
	return v, nil
}

func (p *parser) array(s *Schema) (*Value, *serdeError) {
	v := &Value{Kind: KindArray}
	err := p.elements(func() *serdeError {
		x, err := p.value(s.Items)
		if err == nil {
			v.Items = append(v.Items, x)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// variant reads a unit enum variant, which serde_json wants as a string.
func (p *parser) variant(s *Schema, c byte) (*Value, *serdeError) {
	if c != '"' {
		return nil, p.peekErr("expected value")
	}
	str, err := p.str()
	if err != nil {
		return nil, err
	}
	if !contains(s.Enum, str) {
		return nil, p.err("unknown variant `" + str + "`, " + expectedNames(s.Enum, "variants"))
	}
	return &Value{Kind: KindString, Str: str}, nil
}

func (p *parser) string(s *Schema) (*Value, *serdeError) {
	str, err := p.str()
	if err != nil {
		return nil, err
	}
	if s != nil && s.parse != nil {
		if msg := s.parse(str); msg != "" {
			// A type's own Deserialize failing: serde_json places the
			// error where its struct stopped reading, past a '}' that
			// ends the object.
			if c, _ := p.ws(); c == '}' {
				p.i++
			}
			return nil, p.err(msg)
		}
	}
	return &Value{Kind: KindString, Str: str}, nil
}

// num reads a number for an integer or number schema.
func (p *parser) num(s *Schema) (*Value, *serdeError) {
	text, err := p.number()
	if err != nil {
		return nil, err
	}
	f, ferr := strconv.ParseFloat(text, 64)
	if ferr != nil && math.IsInf(f, 0) {
		return nil, p.err("number out of range")
	}
	if s.Type == "number" {
		return &Value{Kind: KindNumber, Num: text}, nil
	}
	rust := s.rustInt()
	if !strings.ContainsAny(text, ".eE") {
		if u, err := strconv.ParseUint(text, 10, 64); err == nil {
			if u > intMax[rust] {
				return nil, p.err("invalid value: integer `" + text + "`, expected " + rust)
			}
			return &Value{Kind: KindNumber, Num: text}, nil
		}
		if n, err := strconv.ParseInt(text, 10, 64); err == nil {
			if n == 0 { // -0
				return &Value{Kind: KindNumber, Num: "0"}, nil
			}
			return nil, p.err("invalid value: integer `" + text + "`, expected " + rust)
		}
		// Too large for a 64-bit integer: serde_json reads a float.
	}
	return nil, p.err("invalid type: floating point `" + rustFloat(f) + "`, expected " + rust)
}

// invalidType reads the value that is not what s wants, as serde_json's
// peek_invalid_type does (a sequence or map is not read), and names both.
func (p *parser) invalidType(s *Schema, c byte) *serdeError {
	var got string
	switch {
	case c == 'n' || c == 't' || c == 'f':
		v, err := p.literal()
		if err != nil {
			return err
		}
		got = "null"
		if v.Kind == KindBool {
			got = "boolean `" + strconv.FormatBool(v.Bool) + "`"
		}
	case c == '-' || isDigit(c):
		n, err := p.number()
		if err != nil {
			return err
		}
		if _, ierr := strconv.ParseInt(n, 10, 64); ierr == nil {
			got = "integer `" + n + "`"
		} else if _, uerr := strconv.ParseUint(n, 10, 64); uerr == nil {
			got = "integer `" + n + "`"
		} else {
			f, _ := strconv.ParseFloat(n, 64)
			got = "floating point `" + rustFloat(f) + "`"
		}
	case c == '"':
		str, err := p.str()
		if err != nil {
			return err
		}
		got = "string " + strconv.Quote(str)
	case c == '[':
		got = "sequence"
	case c == '{':
		got = "map"
	default:
		return p.peekErr("expected value")
	}
	return p.err("invalid type: " + got + ", expected " + s.expected())
}

// expected names what s wants, in serde's words.
func (s *Schema) expected() string {
	switch s.Type {
	case "integer":
		return s.rustInt()
	case "number":
		return "f64"
	case "string":
		return "a string"
	case "boolean":
		return "a boolean"
	case "array":
		return "a sequence"
	}
	if s.Name != "" && !s.Open {
		// The spec's name for it; Firecracker's Rust type may be named
		// a little differently (MachineConfiguration vs MachineConfig).
		return "struct " + s.Name
	}
	return "a map"
}

// Rust integer types of the fields whose type the spec does not give
// (serde names the type in its messages); other integers are u32 when
// the spec says int32, else u64.
var rustInts = map[string]string{"vcpu_count": "u8", "mem_size_mib": "usize", "guest_cid": "u32"}

var intMax = map[string]uint64{"u8": math.MaxUint8, "u16": math.MaxUint16, "u32": math.MaxUint32, "u64": math.MaxUint64, "usize": math.MaxUint64}

func (s *Schema) rustInt() string {
	switch {
	case s.rust != "":
		return s.rust
	case s.Format == "int32":
		return "u32"
	}
	return "u64"
}

// Fields whose type has a Deserialize of its own that can fail on a
// well-formed string, with Firecracker's message.
var stringParsers = map[string]func(string) string{
	"guest_mac": func(s string) string {
		if macAddr.MatchString(s) {
			return ""
		}
		return "The provided MAC address is invalid."
	},
}

// rustFloat formats f as serde does in messages: Rust's Display, always
// with a decimal point.
func rustFloat(f float64) string {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".NI") {
		s += ".0"
	}
	return s
}

// expectedNames lists names the way serde does: "expected `a`",
// "expected `a` or `b`", "expected one of `a`, `b`, `c`".
func expectedNames(names []string, what string) string {
	if len(names) == 0 {
		return "there are no " + what
	}
	return "expected " + oneOf(names)
}
