package fcstandin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
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

// Field returns the member named key.
func (v *Value) Field(key string) (*Value, bool) {
	for _, m := range v.Members {
		if m.Key == key {
			return m.Value, true
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

func (v *Value) is(typ string) bool {
	switch typ {
	case "object":
		return v.Kind == KindObject
	case "array":
		return v.Kind == KindArray
	case "string":
		return v.Kind == KindString
	case "boolean":
		return v.Kind == KindBool
	case "integer", "number":
		return v.Kind == KindNumber
	}
	return true
}

// describe names a value the way serde's "invalid type" errors do.
func (v *Value) describe() string {
	switch v.Kind {
	case KindNull:
		return "null"
	case KindBool:
		return fmt.Sprintf("boolean `%t`", v.Bool)
	case KindNumber:
		if strings.ContainsAny(v.Num, ".eE") {
			return fmt.Sprintf("floating point `%s`", v.Num)
		}
		return fmt.Sprintf("integer `%s`", v.Num)
	case KindString:
		return fmt.Sprintf("string %q", v.Str)
	case KindArray:
		return "sequence"
	}
	return "map"
}

// parseJSON parses exactly one JSON value, refusing duplicate keys and
// trailing data as serde_json does.
func parseJSON(data []byte) (*Value, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := parseValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing characters")
	}
	return v, nil
}

func parseValue(dec *json.Decoder) (*Value, error) {
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, errors.New("EOF while parsing a value")
		}
		return nil, err
	}
	switch t := tok.(type) {
	case nil:
		return &Value{Kind: KindNull}, nil
	case bool:
		return &Value{Kind: KindBool, Bool: t}, nil
	case json.Number:
		return &Value{Kind: KindNumber, Num: t.String()}, nil
	case string:
		return &Value{Kind: KindString, Str: t}, nil
	case json.Delim:
		if t == '[' {
			v := &Value{Kind: KindArray}
			for dec.More() {
				item, err := parseValue(dec)
				if err != nil {
					return nil, err
				}
				v.Items = append(v.Items, item)
			}
			_, err := dec.Token()
			return v, err
		}
		v := &Value{Kind: KindObject}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			key := kt.(string)
			if _, dup := v.Field(key); dup {
				return nil, fmt.Errorf("duplicate field `%s`", key)
			}
			val, err := parseValue(dec)
			if err != nil {
				return nil, err
			}
			v.Members = append(v.Members, Member{key, val})
		}
		_, err := dec.Token()
		return v, err
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}
