// Command valuesschema writes a chart's values.schema.json from its documented values.yaml.
//
// Every key becomes a property whose type is taken from its default value, or from a
// helm-docs type hint (`# -- (int) ...`). Non-empty maps are closed (additionalProperties:
// false), so a misspelt key is an error; empty maps (`{}`) are free-form unless annotated.
// A `# @schema {...}` comment line above a key's `# --` line is merged into its schema as
// JSON, for enums, patterns, minimums, item types and the like. Every leaf must carry a
// `# --` description: an undocumented value is an error.
//
//	go run ./internal/tools/valuesschema -values charts/kafscale/values.yaml -out charts/kafscale/values.schema.json
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

func main() {
	values := flag.String("values", "values.yaml", "the chart's values.yaml")
	out := flag.String("out", "", "where to write the schema (default: stdout)")
	flag.Parse()

	src, err := os.ReadFile(*values)
	if err != nil {
		fail(err)
	}
	schema, err := Generate(src)
	if err != nil {
		fail(fmt.Errorf("%s: %w", *values, err))
	}
	if *out == "" {
		_, err = os.Stdout.Write(schema)
	} else {
		err = os.WriteFile(*out, schema, 0o644)
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "valuesschema:", err)
	os.Exit(1)
}

// Schema is one JSON Schema object. Keys keep a fixed order so the output is stable.
type Schema map[string]any

var (
	schemaLine = regexp.MustCompile(`^#\s*@schema\s+(.*)$`)
	docLine    = regexp.MustCompile(`^#\s*--\s*(.*)$`)
	typeHint   = regexp.MustCompile(`^\(([^)]*)\)\s*(.*)$`)
	otherLine  = regexp.MustCompile(`^#\s*@(default|raw|section|notationType|ignore)`)
)

// Generate returns the JSON Schema (draft 7) for a documented values.yaml.
func Generate(values []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(values, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("values must be a YAML mapping")
	}
	root, err := object(doc.Content[0], "")
	if err != nil {
		return nil, err
	}
	root["$schema"] = "http://json-schema.org/draft-07/schema#"
	root["title"] = "Values of the chart (generated from values.yaml by internal/tools/valuesschema; do not edit)"

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// object is the closed schema of a non-empty mapping.
func object(m *yaml.Node, path string) (Schema, error) {
	props := Schema{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		key, val := m.Content[i], m.Content[i+1]
		p := key.Value
		if path != "" {
			p = path + "." + key.Value
		}
		s, err := property(key, val, p)
		if err != nil {
			return nil, err
		}
		props[key.Value] = s
	}
	return Schema{"type": "object", "additionalProperties": false, "properties": props}, nil
}

func property(key, val *yaml.Node, path string) (Schema, error) {
	c, err := parseComment(key.HeadComment, path)
	if err != nil {
		return nil, err
	}
	var s Schema
	leaf := true
	switch {
	case val.Kind == yaml.MappingNode && c.extra["properties"] != nil:
		// The annotation describes the whole subtree (resources, security contexts):
		// its default keys are examples, not the only allowed ones.
		s = Schema{"type": "object"}
	case val.Kind == yaml.MappingNode && len(val.Content) > 0:
		if s, err = object(val, path); err != nil {
			return nil, err
		}
		leaf = false
	case val.Kind == yaml.MappingNode:
		s = Schema{"type": "object"}
	case val.Kind == yaml.SequenceNode:
		s = Schema{"type": "array"}
	case val.Kind == yaml.ScalarNode:
		s = Schema{}
		if t := scalarType(val.Tag); t != "" {
			s["type"] = t
		}
	default:
		return nil, fmt.Errorf("%s: unsupported YAML node (anchors and aliases are not used in values.yaml)", path)
	}
	if leaf && c.description == "" {
		return nil, fmt.Errorf("%s has no `# --` description: document it where it is declared", path)
	}
	if c.description != "" {
		s["description"] = c.description
	}
	if c.hint != "" {
		t, err := hintType(c.hint, path)
		if err != nil {
			return nil, err
		}
		if val.Tag == "!!null" {
			s["type"] = []string{t, "null"}
		} else {
			s["type"] = t
		}
	}
	for k, v := range c.extra {
		s[k] = v
	}
	return s, nil
}

type comment struct {
	description string
	hint        string
	extra       Schema
}

func parseComment(head, path string) (comment, error) {
	var c comment
	lines := strings.Split(head, "\n")
	doc := -1
	for i, l := range lines {
		l = strings.TrimSpace(l)
		if m := schemaLine.FindStringSubmatch(l); m != nil {
			var extra Schema
			if err := json.Unmarshal([]byte(m[1]), &extra); err != nil {
				return c, fmt.Errorf("%s: @schema is not a JSON object: %w", path, err)
			}
			if c.extra == nil {
				c.extra = Schema{}
			}
			for k, v := range extra {
				c.extra[k] = v
			}
		}
		if docLine.MatchString(l) {
			doc = i // helm-docs reads the last `# --` group only
		}
	}
	if doc < 0 {
		return c, nil
	}
	text := []string{docLine.FindStringSubmatch(strings.TrimSpace(lines[doc]))[1]}
	for _, l := range lines[doc+1:] {
		l = strings.TrimSpace(l)
		if otherLine.MatchString(l) || schemaLine.MatchString(l) {
			continue
		}
		text = append(text, strings.TrimSpace(strings.TrimPrefix(l, "#")))
	}
	desc := strings.TrimSpace(strings.Join(text, " "))
	if m := typeHint.FindStringSubmatch(desc); m != nil {
		c.hint, desc = m[1], m[2]
	}
	c.description = desc
	return c, nil
}

func scalarType(tag string) string {
	switch tag {
	case "!!str":
		return "string"
	case "!!int":
		return "integer"
	case "!!float":
		return "number"
	case "!!bool":
		return "boolean"
	}
	return "" // null: any type unless a hint says otherwise
}

func hintType(hint, path string) (string, error) {
	types := map[string]string{
		"string": "string", "int": "integer", "float": "number", "bool": "boolean",
		"list": "array", "object": "object", "dict": "object",
	}
	if t, ok := types[hint]; ok {
		return t, nil
	}
	known := make([]string, 0, len(types))
	for k := range types {
		known = append(known, k)
	}
	sort.Strings(known)
	return "", fmt.Errorf("%s: unknown type hint (%s); use one of %s", path, hint, strings.Join(known, ", "))
}
