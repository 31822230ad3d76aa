package fcstandin

import (
	"fmt"
	"os"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Spec is Firecracker's API description (a Swagger 2.0 document, as in
// shared/spec/firecracker-api.yaml), reduced to what request validation
// needs: the operations and the schemas of their bodies.
type Spec struct {
	Version string
	ops     []*Operation
}

// Operation is one method on one path template.
type Operation struct {
	Method string // GET, PUT, PATCH
	Path   string // template: /drives/{drive_id}
	ID     string // operationId
	// Body is the body schema; nil when the operation takes none.
	Body         *Schema
	BodyRequired bool
	segs         []string
}

// Schema is the subset of Swagger schema objects Firecracker's API uses.
type Schema struct {
	Type       string
	Format     string
	Required   []string
	Enum       []string
	Minimum    *float64
	Maximum    *float64
	Items      *Schema
	Properties map[string]*Schema
	PropOrder  []string // property names in spec order, for messages
	// Open is true when additionalProperties allows unknown keys; Extra
	// is their schema when one is given.
	Open  bool
	Extra *Schema
	// Name is the definition's name, for "expected struct Name".
	Name string

	rust  string              // the Rust integer type (rustInts), for serde's messages
	parse func(string) string // a string type's own Deserialize (stringParsers)
}

// LoadSpec reads and parses the spec file at path.
func LoadSpec(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading firecracker api spec: %w", err)
	}
	return ParseSpec(data)
}

// raw mirrors the YAML document before $refs are resolved.
type rawDoc struct {
	Info struct {
		Version string `yaml:"version"`
	} `yaml:"info"`
	Paths       yaml.Node `yaml:"paths"`
	Definitions yaml.Node `yaml:"definitions"`
}

type rawOp struct {
	OperationID string `yaml:"operationId"`
	Parameters  []struct {
		In       string    `yaml:"in"`
		Required bool      `yaml:"required"`
		Schema   yaml.Node `yaml:"schema"`
	} `yaml:"parameters"`
}

// ParseSpec parses a spec document.
func ParseSpec(data []byte) (*Spec, error) {
	var doc rawDoc
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parsing firecracker api spec: %w", err)
	}
	r := &resolver{defs: map[string]*yaml.Node{}, done: map[string]*Schema{}}
	for name, node := range mapping(&doc.Definitions) {
		r.defs[name] = node
	}
	s := &Spec{Version: doc.Info.Version}
	for path, item := range mapping(&doc.Paths) {
		for method, opNode := range mapping(item) {
			var ro rawOp
			if err := opNode.Decode(&ro); err != nil {
				return nil, fmt.Errorf("parsing %s %s: %w", method, path, err)
			}
			op := &Operation{Method: strings.ToUpper(method), Path: path, ID: ro.OperationID, segs: split(path)}
			for _, p := range ro.Parameters {
				if p.In != "body" {
					continue
				}
				body, err := r.schema(&p.Schema)
				if err != nil {
					return nil, fmt.Errorf("parsing the body of %s %s: %w", op.Method, path, err)
				}
				op.Body, op.BodyRequired = body, p.Required
			}
			s.ops = append(s.ops, op)
		}
	}
	sort.Slice(s.ops, func(i, j int) bool {
		if s.ops[i].Path != s.ops[j].Path {
			return s.ops[i].Path < s.ops[j].Path
		}
		return s.ops[i].Method < s.ops[j].Method
	})
	return s, nil
}

// Operations lists every operation, sorted by path then method.
func (s *Spec) Operations() []*Operation { return s.ops }

// mapping returns a YAML mapping node's entries.
func mapping(n *yaml.Node) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		out[n.Content[i].Value] = n.Content[i+1]
	}
	return out
}

// resolver turns schema nodes into Schemas, following $refs into the
// definitions once each.
type resolver struct {
	defs map[string]*yaml.Node
	done map[string]*Schema
}

type rawSchema struct {
	Ref        string    `yaml:"$ref"`
	Type       string    `yaml:"type"`
	Format     string    `yaml:"format"`
	Required   []string  `yaml:"required"`
	Enum       []string  `yaml:"enum"`
	Minimum    *float64  `yaml:"minimum"`
	Maximum    *float64  `yaml:"maximum"`
	Items      yaml.Node `yaml:"items"`
	Properties yaml.Node `yaml:"properties"`
	Additional yaml.Node `yaml:"additionalProperties"`
}

const refPrefix = "#/definitions/"

func (r *resolver) schema(n *yaml.Node) (*Schema, error) {
	if n == nil || n.Kind == 0 {
		return nil, nil
	}
	var rs rawSchema
	if err := n.Decode(&rs); err != nil {
		return nil, err
	}
	if rs.Ref != "" {
		name, ok := strings.CutPrefix(rs.Ref, refPrefix)
		if !ok {
			return nil, fmt.Errorf("unsupported $ref %q", rs.Ref)
		}
		if s, ok := r.done[name]; ok {
			return s, nil
		}
		def, ok := r.defs[name]
		if !ok {
			return nil, fmt.Errorf("$ref to unknown definition %q", name)
		}
		s := &Schema{}
		r.done[name] = s // before filling it: definitions may nest
		filled, err := r.schema(def)
		if err != nil {
			return nil, fmt.Errorf("definition %s: %w", name, err)
		}
		*s = *filled
		s.Name = name
		return s, nil
	}
	s := &Schema{Type: rs.Type, Format: rs.Format, Required: rs.Required, Enum: rs.Enum, Minimum: rs.Minimum, Maximum: rs.Maximum}
	if s.Type == "" && rs.Properties.Kind != 0 {
		s.Type = "object"
	}
	var err error
	if s.Items, err = r.schema(&rs.Items); err != nil {
		return nil, err
	}
	if rs.Properties.Kind == yaml.MappingNode {
		s.Properties = map[string]*Schema{}
		c := rs.Properties.Content
		for i := 0; i+1 < len(c); i += 2 {
			p, err := r.schema(c[i+1])
			if err != nil {
				return nil, fmt.Errorf("property %s: %w", c[i].Value, err)
			}
			if p != nil && p.Name == "" { // not a shared definition
				p.rust, p.parse = rustInts[c[i].Value], stringParsers[c[i].Value]
			}
			s.Properties[c[i].Value] = p
			s.PropOrder = append(s.PropOrder, c[i].Value)
		}
	}
	switch rs.Additional.Kind {
	case yaml.ScalarNode:
		s.Open = rs.Additional.Value == "true"
	case yaml.MappingNode:
		s.Open = true
		if s.Extra, err = r.schema(&rs.Additional); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// split turns "/drives/{drive_id}" into ["drives", "{drive_id}"].
func split(path string) []string {
	path = strings.Trim(path, "/")
	if path == "" {
		return nil
	}
	return strings.Split(path, "/")
}
