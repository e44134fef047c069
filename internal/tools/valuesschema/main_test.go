package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestGenerate(t *testing.T) {
	src := `
# -- Shared settings.
# @schema {"additionalProperties": true}
global:
  # -- Registry.
  registry: ""
# -- Replicas.
# @schema {"minimum": 1}
replicas: 2
service:
  # @schema {"enum": ["ClusterIP", "LoadBalancer"]}
  # -- Service type.
  type: ClusterIP
  # -- Annotations.
  annotations: {}
# -- (string) Optional host.
host: ~
# -- Flags.
flags: []
`
	out, err := Generate([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatal(err)
	}
	props := s["properties"].(map[string]any)
	check := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", what, got, want)
		}
	}
	check("root closed", s["additionalProperties"], false)
	check("global open", props["global"].(map[string]any)["additionalProperties"], true)
	r := props["replicas"].(map[string]any)
	check("replicas type", r["type"], "integer")
	check("replicas minimum", r["minimum"], 1.0)
	check("replicas description", r["description"], "Replicas.")
	svc := props["service"].(map[string]any)
	check("service closed", svc["additionalProperties"], false)
	sp := svc["properties"].(map[string]any)
	check("enum", sp["type"].(map[string]any)["enum"], []any{"ClusterIP", "LoadBalancer"})
	check("empty map is free-form", sp["annotations"].(map[string]any)["additionalProperties"], nil)
	check("null with hint", props["host"].(map[string]any)["type"], []any{"string", "null"})
	check("list", props["flags"].(map[string]any)["type"], "array")
}

func TestUndocumentedValueIsAnError(t *testing.T) {
	_, err := Generate([]byte("a:\n  # -- documented\n  b: 1\n  c: 2\n"))
	if err == nil || !strings.Contains(err.Error(), "a.c has no `# --` description") {
		t.Fatalf("err = %v", err)
	}
}

func TestBadAnnotationIsAnError(t *testing.T) {
	_, err := Generate([]byte("# @schema {enum: [a]}\n# -- x\nv: a\n"))
	if err == nil || !strings.Contains(err.Error(), "v: @schema is not a JSON object") {
		t.Fatalf("err = %v", err)
	}
}
