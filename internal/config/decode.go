package config

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// keyNames lists the valid keys in file order, for messages.
var keyNames = func() []string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.key
	}
	return names
}()

// Parse decodes and validates config file data. name, the file's path,
// prefixes every message. All problems are reported together, one per
// line, in file order.
func Parse(data []byte, name string) (Config, error) {
	// A map rather than a strict struct: the decoder stops at the first
	// type mismatch, and the user should see every problem in one go.
	var values map[string]any
	if err := toml.Unmarshal(data, &values); err != nil {
		return Config{}, syntaxError(data, name, err)
	}
	d := &decoder{name: name, keys: keyPositions(data), failed: map[string]bool{}}
	c := d.decode(values)
	if len(d.problems) > 0 {
		return Config{}, d.err()
	}
	return c, nil
}

// decoder collects the problems found in one file.
type decoder struct {
	name     string
	keys     map[string]keyPos
	failed   map[string]bool // keys already reported, skipped by cross checks
	problems []problem
}

type problem struct {
	line int
	msg  string
}

func (d *decoder) decode(values map[string]any) Config {
	c := Default()
	for _, k := range slices.Sorted(maps.Keys(values)) {
		if !slices.Contains(keyNames, k) {
			d.add(k, d.unknown(k))
		}
	}
	for _, f := range fields {
		if v, ok := values[f.key]; ok {
			d.set(&c, f, v)
		}
	}
	for _, x := range crossChecks {
		d.cross(c, x)
	}
	if _, ok := values["web_listen_addr"]; ok && !d.failed["web_listen_addr"] {
		if w := exposedWarning(c.WebListenAddr); w != "" {
			c.Warnings = append(c.Warnings, d.at(d.keys["web_listen_addr"].line)+w)
		}
	}
	return c
}

func (d *decoder) set(c *Config, f field, v any) {
	var err error
	if got := tomlType(v); got != f.want {
		err = fmt.Errorf("expected %s, got %s; write it like %s = %s", f.want, got, f.key, f.example)
	} else if err = f.set(c, v); err == nil {
		err = f.check(*c)
	}
	if err != nil {
		d.failed[f.key] = true
		d.add(f.key, fmt.Sprintf("%s: %v", f.key, err))
	}
}

func (d *decoder) cross(c Config, x crossCheck) {
	if d.failed[x.key] || d.failed[x.other] {
		return // already reported; comparing would only add noise
	}
	err := x.check(c)
	if err == nil {
		return
	}
	msg := fmt.Sprintf("%s: %v", x.key, err)
	at := x.key
	if _, ok := d.keys[at]; !ok {
		// The user wrote only x.other; point there and say why x.key,
		// absent from the file, is involved at all.
		at = x.other
		msg += fmt.Sprintf(" (%s is not set, so its default applies)", x.key)
	}
	d.add(at, msg)
}

func (d *decoder) unknown(k string) string {
	pos := d.keys[k]
	if pos.table {
		return fmt.Sprintf("unknown table %q; banger's config has no tables: delete the %s line so its keys are read as top-level keys", k, pos.full)
	}
	msg := fmt.Sprintf("unknown key %q", pos.full)
	if near := suggest(pos.full, keyNames); near != "" {
		msg += fmt.Sprintf("; did you mean %q?", near)
	}
	return msg + " (valid keys: " + strings.Join(keyNames, ", ") + ")"
}

func (d *decoder) add(key, msg string) {
	d.problems = append(d.problems, problem{line: d.keys[key].line, msg: msg})
}

// at is the "file:line: " prefix of a message about line.
func (d *decoder) at(line int) string {
	if line > 0 {
		return fmt.Sprintf("%s:%d: ", d.name, line)
	}
	return d.name + ": "
}

func (d *decoder) err() error {
	slices.SortStableFunc(d.problems, func(a, b problem) int { return cmp.Compare(a.line, b.line) })
	errs := make([]error, len(d.problems))
	for i, p := range d.problems {
		errs[i] = errors.New(d.at(p.line) + p.msg)
	}
	return errors.Join(errs...)
}

// tomlType names the TOML type of a value decoded into an any.
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return tomlString
	case int64:
		return tomlInteger
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time, toml.LocalDate, toml.LocalTime, toml.LocalDateTime:
		return "a date or time"
	}
	return fmt.Sprintf("a %T", v)
}

// keyPos is where a top-level key first appears in the file.
type keyPos struct {
	line  int
	full  string // the key as written: dotted parts joined, [brackets] for tables
	table bool   // introduced by a [table] header
}

// keyPositions finds the line of each top-level key. The decoder reports
// positions only for the errors it raises, not for keys that decode fine
// but fail validation, so we walk the syntax tree ourselves.
func keyPositions(data []byte) map[string]keyPos {
	keys := map[string]keyPos{}
	var p unstable.Parser
	p.Reset(data)
	inTable := false
	// No need to check p.Error: toml.Unmarshal already accepted data.
	for p.NextExpression() {
		e := p.Expression()
		switch {
		case e.Kind == unstable.Table || e.Kind == unstable.ArrayTable:
			inTable = true
		case e.Kind != unstable.KeyValue || inTable:
			continue // keys inside a table are not top-level
		}
		var parts []string
		line := 0
		for it := e.Key(); it.Next(); {
			if line == 0 {
				line = p.Shape(it.Node().Raw).Start.Line
			}
			parts = append(parts, string(it.Node().Data))
		}
		if _, seen := keys[parts[0]]; !seen {
			keys[parts[0]] = newKeyPos(e.Kind, parts, line)
		}
	}
	return keys
}

func newKeyPos(kind unstable.Kind, parts []string, line int) keyPos {
	full := strings.Join(parts, ".")
	switch kind {
	case unstable.Table:
		return keyPos{line: line, full: "[" + full + "]", table: true}
	case unstable.ArrayTable:
		return keyPos{line: line, full: "[[" + full + "]]", table: true}
	}
	return keyPos{line: line, full: full}
}
