package api_test

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"banger/api"
)

// notOnTheWire are struct types of package api that no API body carries
// (a manifest's content, query options, the generic frame whose typed
// variants the document names per stream).
var notOnTheWire = map[string]bool{
	"Frame": true, "PullInfo": true, "PullLayer": true, "ImageConfig": true,
	"SessionLogsRequest": true, "DeleteOptions": true,
}

// LoadOpenAPI loads and validates the embedded document.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatalf("loading api/openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("api/openapi.yaml is not a valid OpenAPI 3 document: %v", err)
	}
	return doc
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc := loadOpenAPI(t)
	if doc.Info.Version != api.Version {
		t.Errorf("info.version = %q, want %q", doc.Info.Version, api.Version)
	}
	for path := range doc.Paths.Map() {
		if !strings.HasPrefix(path, "/"+api.Version+"/") {
			t.Errorf("path %s is outside /%s/", path, api.Version)
		}
	}
}

// goField is one JSON field of a Go struct as encoding/json writes it.
type goField struct {
	kind   string // as schemaKind spells it
	always bool   // present in every encoding (no omitempty, or a struct or array)
	null   bool   // may be null (a slice, map or pointer without omitempty)
}

// TestOpenAPISchemasMatchGoTypes compares every wire struct of package api
// with the component schema of the same name: the same properties, of the
// same kinds, the same required set for answers, and closed request
// bodies (the server refuses unknown fields). A field added to a Go type
// without the document fails here, even where no call sets it.
func TestOpenAPISchemasMatchGoTypes(t *testing.T) {
	doc := loadOpenAPI(t)
	structs := apiStructs(t)
	if len(structs) < 20 {
		t.Fatalf("found only %d structs in package api; is the parser looking at the right directory?", len(structs))
	}
	for name, fields := range structs {
		if notOnTheWire[name] {
			continue
		}
		ref := doc.Components.Schemas[name]
		if ref == nil || ref.Value == nil {
			t.Errorf("api.%s has no schema in api/openapi.yaml (components/schemas/%s); document it, or list it in notOnTheWire if no API body carries it", name, name)
			continue
		}
		s := ref.Value
		request := strings.HasSuffix(name, "Request") || name == "PortSpec"
		if request && (s.AdditionalProperties.Has == nil || *s.AdditionalProperties.Has) {
			t.Errorf("schema %s: a request body; set additionalProperties: false (the server refuses unknown fields)", name)
		}
		var wantRequired []string
		for json, f := range fields {
			p := s.Properties[json]
			if p == nil {
				t.Errorf("schema %s lacks property %q of api.%s", name, json, name)
				continue
			}
			if got := schemaKind(p); got != f.kind {
				t.Errorf("schema %s.%s is %s, want %s", name, json, got, f.kind)
			}
			if got := nullable(p); got != f.null {
				t.Errorf("schema %s.%s: nullable %v, want %v (encoding/json writes null for a nil slice, map or pointer without omitempty)", name, json, got, f.null)
			}
			if f.always && !request {
				wantRequired = append(wantRequired, json)
			}
		}
		for json := range s.Properties {
			if _, ok := fields[json]; !ok {
				t.Errorf("schema %s has property %q that api.%s does not", name, json, name)
			}
		}
		if !request {
			got := slices.Sorted(slices.Values(s.Required))
			slices.Sort(wantRequired)
			if !slices.Equal(got, wantRequired) {
				t.Errorf("schema %s: required %v, want %v (the fields always encoded)", name, got, wantRequired)
			}
		}
	}
}

func nullable(p *openapi3.SchemaRef) bool {
	return p.Value != nil && p.Value.Nullable
}

// schemaKind spells a property's type: string, integer, number, boolean,
// object, date-time, duration, array of X, or a schema name.
func schemaKind(p *openapi3.SchemaRef) string {
	if p.Ref != "" {
		return strings.TrimPrefix(p.Ref, "#/components/schemas/")
	}
	s := p.Value
	if len(s.AllOf) == 1 {
		return schemaKind(s.AllOf[0])
	}
	switch {
	case s.Type == nil:
		return "any"
	case s.Type.Is("string") && s.Format == "date-time":
		return "date-time"
	case s.Type.Is("array"):
		k := "array of " + schemaKind(s.Items)
		if s.MinItems > 0 && s.MaxItems != nil && *s.MaxItems == s.MinItems {
			k = strconv.FormatUint(s.MinItems, 10) + " " + k
		}
		return k
	case s.Type.Is("integer") && strings.Contains(s.Description, "nanoseconds"):
		return "duration"
	}
	return s.Type.Slice()[0]
}

// apiStructs parses package api's source: every exported struct type with
// JSON fields, as encoding/json sees them.
func apiStructs(t *testing.T) map[string]map[string]goField {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi fs.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]goField{}
	for _, p := range pkgs {
		for _, f := range p.Files {
			ast.Inspect(f, func(n ast.Node) bool {
				ts, ok := n.(*ast.TypeSpec)
				if !ok || !ts.Name.IsExported() {
					return true
				}
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					return true
				}
				fields := map[string]goField{}
				for _, fl := range st.Fields.List {
					if fl.Tag == nil {
						continue
					}
					tag, _ := strconv.Unquote(fl.Tag.Value)
					json := reflect.StructTag(tag).Get("json")
					if json == "" || json == "-" {
						continue
					}
					name, opts, _ := strings.Cut(json, ",")
					omit := slices.Contains(strings.Split(opts, ","), "omitempty")
					kind, shape := goKind(fl.Type)
					fields[name] = goField{
						kind:   kind,
						always: !omit || shape == "struct" || shape == "array",
						null:   !omit && (shape == "slice" || shape == "map" || shape == "pointer"),
					}
				}
				if len(fields) > 0 {
					out[ts.Name.Name] = fields
				}
				return false
			})
		}
	}
	return out
}

// goKind spells a Go field type the way schemaKind spells its schema, and
// says its shape as encoding/json's omitempty sees it.
func goKind(e ast.Expr) (kind, shape string) {
	switch e := e.(type) {
	case *ast.StarExpr:
		k, _ := goKind(e.X)
		return k, "pointer"
	case *ast.ArrayType:
		k, _ := goKind(e.Elt)
		if e.Len != nil {
			return e.Len.(*ast.BasicLit).Value + " array of " + k, "array"
		}
		return "array of " + k, "slice"
	case *ast.MapType:
		return "object", "map"
	case *ast.SelectorExpr:
		switch x := e.X.(*ast.Ident).Name + "." + e.Sel.Name; x {
		case "time.Time":
			return "date-time", "struct"
		case "time.Duration":
			return "duration", "number"
		case "errdefs.Kind":
			return "ErrorKind", "string"
		default:
			return x, "struct"
		}
	case *ast.Ident:
		switch e.Name {
		case "string":
			return "string", "string"
		case "bool":
			return "boolean", "bool"
		case "int", "int64", "uint16", "uint64":
			return "integer", "number"
		case "float64":
			return "number", "number"
		case "any":
			return "any", "interface"
		case "VMState":
			return "VMState", "string"
		}
		return e.Name, "struct"
	}
	return "unknown", ""
}
