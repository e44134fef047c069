package acl

import (
	"strings"
	"testing"
)

// The guide's own example, verbatim: analytics may fetch orders-* topics and nothing else;
// everyone else nothing.
const guideExample = `{"default_policy":"deny","principals":[
{"name":"analytics","allow":[{"action":"fetch","resource":"topic","name":"orders-*"}]}
]}`

func TestGuideExample(t *testing.T) {
	rules, err := Parse(guideExample)
	if err != nil {
		t.Fatal(err)
	}
	a := New(true, rules)
	cases := []struct {
		principal string
		op        Operation
		typ       ResourceType
		name      string
		want      bool
	}{
		{"User:analytics", Read, Topic, "orders-1", true},
		{"User:analytics", Describe, Topic, "orders-1", true}, // Metadata, ListOffsets
		{"User:analytics", Read, Topic, "orders-", true},      // `*` matches nothing too
		{"User:analytics", Read, Topic, "orders", false},
		{"User:analytics", Read, Topic, "payments", false},
		{"User:analytics", Write, Topic, "orders-1", false},
		{"User:analytics", Read, Group, "orders-1", false},
		{"User:analytics", Create, Cluster, "kafka-cluster", false},
		{"User:analytics2", Read, Topic, "orders-1", false},
		{"User:other", Read, Topic, "orders-1", false},
	}
	for _, tc := range cases {
		if got := a.Allow(tc.principal, tc.op, tc.typ, tc.name); got != tc.want {
			t.Errorf("Allow(%s, %s, %s, %s) = %v, want %v", tc.principal, tc.op, tc.typ, tc.name, got, tc.want)
		}
	}
}

// Deny lists win over allow lists and over default_policy "allow"; wildcards work in
// principal and resource names; every action maps to the operations documented.
func TestGuideAllowDenyAndDefaults(t *testing.T) {
	doc := `{"default_policy":"allow","principals":[
	  {"name":"*","deny":[{"action":"admin","resource":"topic","name":"*"}]},
	  {"name":"ops","allow":[{"action":"admin","resource":"topic","name":"*"}]},
	  {"name":"app-*","deny":[{"action":"fetch","resource":"topic","name":"secret-*-eu"}]},
	  {"name":"10.0.0.0/8","deny":[{"action":"produce","resource":"topic","name":"audit"}]}
	]}`
	rules, err := Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	a := New(true, rules)
	cases := []struct {
		principal string
		op        Operation
		typ       ResourceType
		name      string
		want      bool
	}{
		{"User:anyone", Write, Topic, "x", true},             // default allow
		{"User:anyone", Delete, Topic, "x", false},           // denied to everyone
		{"User:ops", Delete, Topic, "x", false},              // a deny wins over an allow
		{"User:anyone", Describe, Topic, "x", true},          // denying admin does not hide topics
		{"User:app-1", Read, Topic, "secret-x-eu", false},    // both wildcards
		{"User:app-1", Read, Topic, "secret-x-us", true},     // pattern does not match
		{"User:app-1", Describe, Topic, "secret-x-eu", true}, // denying fetch keeps Metadata
		{"User:web", Read, Topic, "secret-x-eu", true},       // principal pattern does not match
		{"User:10.1.2.3", Write, Topic, "audit", false},      // CIDR principal
		{"User:192.168.0.1", Write, Topic, "audit", true},
	}
	for _, tc := range cases {
		if got := a.Allow(tc.principal, tc.op, tc.typ, tc.name); got != tc.want {
			t.Errorf("Allow(%s, %s, %s, %s) = %v, want %v", tc.principal, tc.op, tc.typ, tc.name, got, tc.want)
		}
	}

	// What each action allows, on a resource it applies to.
	actions := []struct {
		action, resource string
		allows, not      []Operation
	}{
		{"produce", "topic", []Operation{Write, Describe}, []Operation{Read, Delete}},
		{"fetch", "topic", []Operation{Read, Describe}, []Operation{Write}},
		{"group", "group", []Operation{Read, Describe}, []Operation{Delete}},
		{"describe", "cluster", []Operation{Describe}, []Operation{Create}},
		{"create", "cluster", []Operation{Create}, []Operation{Describe}},
		{"delete", "group", []Operation{Delete, Describe}, []Operation{Read}},
		{"alter", "topic", []Operation{Alter, Describe}, []Operation{AlterConfigs}},
		{"describe_configs", "topic", []Operation{DescribeConfigs}, []Operation{AlterConfigs}},
		{"alter_configs", "topic", []Operation{AlterConfigs, DescribeConfigs}, []Operation{Alter}},
		{"admin", "topic", []Operation{Create, Delete, Alter, DescribeConfigs, AlterConfigs, Describe}, []Operation{Read, Write}},
		{"all", "topic", []Operation{Read, Write, Delete}, nil},
	}
	for _, tc := range actions {
		doc := `{"principals":[{"name":"p","allow":[{"action":"` + tc.action + `","resource":"` + tc.resource + `","name":"r"}]}]}`
		rules, err := Parse(doc)
		if err != nil {
			t.Fatalf("%s: %v", tc.action, err)
		}
		a := New(true, rules)
		for _, op := range tc.allows {
			if !a.Allow("User:p", op, ResourceType(tc.resource), "r") {
				t.Errorf("action %s does not allow %s", tc.action, op)
			}
		}
		for _, op := range tc.not {
			if a.Allow("User:p", op, ResourceType(tc.resource), "r") {
				t.Errorf("action %s allows %s", tc.action, op)
			}
		}
	}
	if len(ActionNames()) != len(actions) {
		t.Errorf("actions %v: each must be tested here and documented", ActionNames())
	}
}

func TestGuideParseErrors(t *testing.T) {
	cases := []struct{ name, doc, want string }{
		{"bad policy", `{"default_policy":"maybe","principals":[]}`, `default_policy "maybe"`},
		{"mixed formats", `{"default_policy":"deny","rules":[]}`, "mixes the two formats"},
		{"unknown key", `{"default_policy":"deny","principal":[]}`, `unknown field "principal"`},
		{"no name", `{"principals":[{"allow":[]}]}`, "principal 0: no name"},
		{"bad action", `{"principals":[{"name":"a","allow":[{"action":"read","resource":"topic","name":"t"}]}]}`,
			`principal "a", allow 0: unknown action "read"`},
		{"action on the wrong resource", `{"principals":[{"name":"a","deny":[{"action":"produce","resource":"group","name":"g"}]}]}`,
			`principal "a", deny 0: action "produce" applies to resource topic, not "group"`},
		{"no resource name", `{"principals":[{"name":"a","allow":[{"action":"fetch","resource":"topic"}]}]}`, "topic without a name"},
		{"bad cidr", `{"principals":[{"name":"10.0.0.0/40","allow":[{"action":"fetch","resource":"topic","name":"t"}]}]}`, "bad CIDR"},
	}
	for _, tc := range cases {
		if _, err := Parse(tc.doc); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
	// No default_policy: deny.
	rules, err := Parse(`{"principals":[]}`)
	if err != nil || New(true, rules).Allow("User:a", Describe, Topic, "t") {
		t.Errorf("default policy: %v, want deny", err)
	}
}

func TestWildcard(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"orders-*", "orders-1", true}, {"orders-*", "orders", false}, {"*", "", true},
		{"a*b*c", "abc", true}, {"a*b*c", "aXbYc", true}, {"a*b*c", "acb", false},
		{"*-eu", "x-eu", true}, {"*-eu", "x-eu2", false}, {"a*a", "a", false}, {"exact", "exact", true},
	} {
		if got := wildcard(tc.pattern, tc.s); got != tc.want {
			t.Errorf("wildcard(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}
