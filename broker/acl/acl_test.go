package acl

import (
	"strings"
	"testing"
)

func TestParseErrorsNameTheRule(t *testing.T) {
	cases := []struct {
		name, doc, want string
	}{
		{"not json", `{"rules": [`, "not a valid ACL document"},
		{"array", `[]`, "not a valid ACL document"},
		{"no rules key", `{}`, `or {"rules": [...]}`},
		{"unknown field", `{"rules": [], "deny": []}`, `unknown field "deny"`},
		{"trailing", `{"rules": []} {}`, "text after"},
		{"bad principal", `{"rules": [{"principal": "alice", "operations": ["Read"], "resource": {"type": "topic", "name": "t"}}]}`, `rule 0 (principal "alice")`},
		{"bad cidr", `{"rules": [{"principal": "User:10.0.0.0/33", "operations": ["Read"], "resource": {"type": "topic", "name": "t"}}]}`, "bad CIDR"},
		{"no operations", `{"rules": [{"principal": "User:a", "resource": {"type": "topic", "name": "t"}}]}`, "no operations"},
		{"bad operation", `{"rules": [{"principal": "User:a", "operations": ["Read"], "resource": {"type": "topic", "name": "t"}},
			{"principal": "User:b", "operations": ["Eat"], "resource": {"type": "topic", "name": "t"}}]}`, `rule 1 (principal "User:b"): unknown operation "Eat"`},
		{"no resource", `{"rules": [{"principal": "User:a", "operations": ["Read"]}]}`, "no resource"},
		{"bad type", `{"rules": [{"principal": "User:a", "operations": ["Read"], "resource": {"type": "queue", "name": "t"}}]}`, `resource type "queue"`},
		{"bad pattern", `{"rules": [{"principal": "User:a", "operations": ["Read"], "resource": {"type": "topic", "name": "t", "patternType": "regex"}}]}`, `patternType "regex"`},
		{"no name", `{"rules": [{"principal": "User:a", "operations": ["Read"], "resource": {"type": "group"}}]}`, "group resource without a name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.doc)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if r, err := Parse("  "); err != nil || len(r) != 0 {
		t.Fatalf("empty document: %v %v", r, err)
	}
}

const doc = `{"rules": [
  {"principal": "User:10.1.0.0/16", "operations": ["Write", "Describe"], "resource": {"type": "topic", "name": "orders", "patternType": "literal"}},
  {"principal": "User:10.2.0.0/16", "operations": ["Read"], "resource": {"type": "topic", "name": "orders"}},
  {"principal": "User:10.2.0.0/16", "operations": ["read"], "resource": {"type": "group", "name": "orders-", "patternType": "prefixed"}},
  {"principal": "User:alice", "operations": ["All"], "resource": {"type": "topic", "name": "*"}},
  {"principal": "User:*", "operations": ["Describe"], "resource": {"type": "topic", "name": "public.", "patternType": "PREFIXED"}},
  {"principal": "User:admin", "operations": ["Create", "Describe"], "resource": {"type": "cluster"}},
  {"principal": "User:fd00::/8", "operations": ["Write"], "resource": {"type": "topic", "name": "v6"}},
  {"principal": "User:192.168.1.5", "operations": ["Write"], "resource": {"type": "topic", "name": "one"}}
]}`

func TestAllow(t *testing.T) {
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
		{"User:10.1.2.3", Write, Topic, "orders", true},
		{"User:10.1.2.3", Describe, Topic, "orders", true},
		{"User:10.1.2.3", Read, Topic, "orders", false},        // operation not granted
		{"User:10.1.2.3", Write, Topic, "orders2", false},      // literal is exact
		{"User:10.3.0.1", Write, Topic, "orders", false},       // outside the CIDR
		{"User:::ffff:10.1.0.9", Write, Topic, "orders", true}, // IPv4-mapped IPv6
		{"User:10.2.0.1", Describe, Topic, "orders", true},     // Read implies Describe
		{"User:10.2.0.1", Read, Group, "orders-eu", true},      // prefixed
		{"User:10.2.0.1", Read, Group, "orders", false},        // prefix "orders-"
		{"User:10.2.0.1", Read, Topic, "orders-eu", false},     // group rule, not topic
		{"User:alice", Delete, Topic, "anything", true},        // All on "*"
		{"User:alice", Read, Group, "g", false},
		{"User:alicex", Read, Topic, "t", false},           // names match exactly
		{"User:bob", Describe, Topic, "public.news", true}, // User:*
		{"User:bob", Read, Topic, "public.news", false},
		{"User:admin", Create, Cluster, "kafka-cluster", true},
		{"User:admin", Create, Topic, "x", false}, // cluster rule only
		{"User:fd12::1", Write, Topic, "v6", true},
		{"User:fe80::1", Write, Topic, "v6", false},
		{"User:192.168.1.5", Write, Topic, "one", true}, // single IP
		{"User:192.168.1.6", Write, Topic, "one", false},
		{"User:10.1.0.0/16", Write, Topic, "orders", false}, // a CIDR is not an IP principal
		{"alice", Read, Topic, "t", false},                  // not a User: principal
	}
	for _, tc := range cases {
		if got := a.Allow(tc.principal, tc.op, tc.typ, tc.name); got != tc.want {
			t.Errorf("Allow(%s, %s, %s, %s) = %v, want %v", tc.principal, tc.op, tc.typ, tc.name, got, tc.want)
		}
	}
}

func TestFailClosedAndDisabled(t *testing.T) {
	if New(true, nil).Allow("User:alice", Read, Topic, "t") {
		t.Fatal("enabled without rules allowed a request")
	}
	rules, _ := Parse(doc)
	if !New(false, rules).Allow("User:nobody", Delete, Cluster, "") {
		t.Fatal("disabled authorizer denied a request")
	}
	var nilAuth *Authorizer
	if !nilAuth.Allow("User:x", Write, Topic, "t") || nilAuth.Enabled() {
		t.Fatal("nil authorizer must allow everything")
	}
}
