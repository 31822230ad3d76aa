package fcstandin

import (
	"strconv"
)

// Kinds of JSON values.
const (
	KindNull = iota
	KindBool
	KindNumber
	KindString
	KindArray
	KindObject
)

// Value is a parsed JSON value that keeps object keys in order and
// numbers as written, so validation can report what was sent.
type Value struct {
	Kind    int
	Bool    bool
	Num     string
	Str     string
	Items   []*Value
	Members []Member
}

// Member is one key of an object.
type Member struct {
	Key   string
	Value *Value
}

// Field returns the member named key (the last one, as a map keeps it).
func (v *Value) Field(key string) (*Value, bool) {
	for i := len(v.Members) - 1; i >= 0; i-- {
		if v.Members[i].Key == key {
			return v.Members[i].Value, true
		}
	}
	return nil, false
}

// String returns the string member key, or "".
func (v *Value) String(key string) string {
	if f, ok := v.Field(key); ok && f.Kind == KindString {
		return f.Str
	}
	return ""
}

// Flag returns the boolean member key, or false.
func (v *Value) Flag(key string) bool {
	f, ok := v.Field(key)
	return ok && f.Kind == KindBool && f.Bool
}

// Int returns the integer member key, or 0.
func (v *Value) Int(key string) int64 {
	if f, ok := v.Field(key); ok && f.Kind == KindNumber {
		n, _ := strconv.ParseInt(f.Num, 10, 64)
		return n
	}
	return 0
}

// serdeError is a body error in serde_json's words. at is the byte index
// serde_json reports the position of: the next unread byte for most
// errors, one past the offending byte for syntax errors ("peek" errors).
type serdeError struct {
	msg string
	at  int
}

// message is the error as serde_json displays it: "<msg> at line L
// column C", where C counts the bytes of line L before index at.
func (e *serdeError) message(data []byte) string {
	line, start := 1, 0
	for i := 0; i < e.at && i < len(data); i++ {
		if data[i] == '\n' {
			line, start = line+1, i+1
		}
	}
	return e.msg + " at line " + strconv.Itoa(line) + " column " + strconv.Itoa(e.at-start)
}

// scanner reads JSON the way serde_json does, so that errors come at the
// same places. Values are read by parser (validate.go), which knows what
// each one should be.
type scanner struct {
	data  []byte
	i     int
	depth int
}

// serde_json's recursion limit.
const maxDepth = 128

// ws skips whitespace and returns the next byte without reading it.
func (s *scanner) ws() (byte, bool) {
	for s.i < len(s.data) {
		switch c := s.data[s.i]; c {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return c, true
		}
	}
	return 0, false
}

// peekErr is an error about the next byte (serde_json's peek_error).
func (s *scanner) peekErr(msg string) *serdeError {
	return &serdeError{msg, min(s.i+1, len(s.data))}
}

// err is an error about what was just read (serde_json's error).
func (s *scanner) err(msg string) *serdeError { return &serdeError{msg, s.i} }

// ident reads the rest of a literal (after its first byte).
func (s *scanner) ident(rest string) *serdeError {
	for i := 0; i < len(rest); i++ {
		if s.i >= len(s.data) {
			return s.err("EOF while parsing a value")
		}
		c := s.data[s.i]
		s.i++
		if c != rest[i] {
			return s.err("expected ident")
		}
	}
	return nil
}

// literal reads true, false or null.
func (s *scanner) literal() (*Value, *serdeError) {
	c := s.data[s.i]
	s.i++
	switch c {
	case 't':
		return &Value{Kind: KindBool, Bool: true}, s.ident("rue")
	case 'f':
		return &Value{Kind: KindBool}, s.ident("alse")
	}
	return &Value{Kind: KindNull}, s.ident("ull")
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number reads a number and returns it as written.
func (s *scanner) number() (string, *serdeError) {
	start := s.i
	if s.data[s.i] == '-' {
		s.i++
	}
	digits := func() *serdeError {
		if s.i >= len(s.data) {
			return s.peekErr("EOF while parsing a value")
		}
		if !isDigit(s.data[s.i]) {
			return s.peekErr("invalid number")
		}
		for s.i < len(s.data) && isDigit(s.data[s.i]) {
			s.i++
		}
		return nil
	}
	if s.i < len(s.data) && s.data[s.i] == '0' {
		s.i++
		if s.i < len(s.data) && isDigit(s.data[s.i]) {
			return "", s.peekErr("invalid number")
		}
	} else if err := digits(); err != nil {
		return "", err
	}
	if s.i < len(s.data) && s.data[s.i] == '.' {
		s.i++
		if err := digits(); err != nil {
			return "", err
		}
	}
	if s.i < len(s.data) && (s.data[s.i] == 'e' || s.data[s.i] == 'E') {
		s.i++
		if s.i < len(s.data) && (s.data[s.i] == '+' || s.data[s.i] == '-') {
			s.i++
		}
		if err := digits(); err != nil {
			return "", err
		}
	}
	return string(s.data[start:s.i]), nil
}

// str reads a string (the next byte is its opening quote).
func (s *scanner) str() (string, *serdeError) {
	s.i++
	var out []byte
	for {
		if s.i >= len(s.data) {
			return "", s.err("EOF while parsing a string")
		}
		c := s.data[s.i]
		s.i++
		switch {
		case c == '"':
			return string(out), nil
		case c < 0x20:
			return "", s.err("control character (\\u0000-\\u001F) found while parsing a string")
		case c != '\\':
			out = append(out, c)
			continue
		}
		if s.i >= len(s.data) {
			return "", s.err("EOF while parsing a string")
		}
		e := s.data[s.i]
		s.i++
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, err := s.hex4()
			if err != nil {
				return "", err
			}
			if r >= 0xD800 && r < 0xDC00 && s.i+1 < len(s.data) && s.data[s.i] == '\\' && s.data[s.i+1] == 'u' {
				s.i += 2
				lo, err := s.hex4()
				if err != nil {
					return "", err
				}
				r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
			}
			out = append(out, string(rune(r))...)
		default:
			return "", s.err("invalid escape")
		}
	}
}

func (s *scanner) hex4() (int, *serdeError) {
	if s.i+4 > len(s.data) {
		s.i = len(s.data)
		return 0, s.err("EOF while parsing a string")
	}
	n, err := strconv.ParseUint(string(s.data[s.i:s.i+4]), 16, 16)
	s.i += 4
	if err != nil {
		return 0, s.err("invalid escape")
	}
	return int(n), nil
}

// members reads an object's members (the next byte is '{') the way
// serde_json's MapAccess does; key is called after each key, value reads
// each value. It returns once the closing '}' is read.
func (s *scanner) members(key func(k string) *serdeError, value func(k string) *serdeError) *serdeError {
	if s.depth++; s.depth > maxDepth {
		return s.err("recursion limit exceeded")
	}
	defer func() { s.depth-- }()
	s.i++
	for first := true; ; first = false {
		c, ok := s.ws()
		switch {
		case !ok:
			return s.peekErr("EOF while parsing an object")
		case c == '}':
			s.i++
			return nil
		case c == ',' && !first:
			s.i++
			c, ok = s.ws()
		case !first:
			return s.peekErr("expected `,` or `}`")
		}
		switch {
		case !ok:
			return s.peekErr("EOF while parsing a value")
		case c == '}':
			return s.peekErr("trailing comma")
		case c != '"':
			return s.peekErr("key must be a string")
		}
		k, err := s.str()
		if err != nil {
			return err
		}
		if err := key(k); err != nil {
			return err
		}
		switch c, ok := s.ws(); {
		case !ok:
			return s.peekErr("EOF while parsing an object")
		case c != ':':
			return s.peekErr("expected `:`")
		}
		s.i++
		if err := value(k); err != nil {
			return err
		}
	}
}

// elements reads an array's elements (the next byte is '[') the way
// serde_json's SeqAccess does.
func (s *scanner) elements(value func() *serdeError) *serdeError {
	if s.depth++; s.depth > maxDepth {
		return s.err("recursion limit exceeded")
	}
	defer func() { s.depth-- }()
	s.i++
	for first := true; ; first = false {
		c, ok := s.ws()
		switch {
		case !ok:
			return s.peekErr("EOF while parsing a list")
		case c == ']':
			s.i++
			return nil
		case c == ',' && !first:
			s.i++
			c, ok = s.ws()
		case !first:
			return s.peekErr("expected `,` or `]`")
		}
		switch {
		case !ok:
			return s.peekErr("EOF while parsing a value")
		case c == ']':
			return s.peekErr("trailing comma")
		}
		if err := value(); err != nil {
			return err
		}
	}
}
