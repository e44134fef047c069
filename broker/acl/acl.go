// Package acl is the broker's authorizer: rules parsed from the ACL document
// (KAFSCALE_ACL_JSON, KAFSCALE_ACL_CONFIG_JSON or KAFSCALE_ACL_FILE) and an Allow check.
// Two document formats are accepted, told apart by their top-level keys; both are
// documented in docs/operations.md.
//
// The operations guide's format names principals and lists what each may and may not do:
//
//	{"default_policy": "deny", "principals": [{"name": "analytics",
//	  "allow": [{"action": "fetch", "resource": "topic", "name": "orders-*"}],
//	  "deny":  [{"action": "fetch", "resource": "topic", "name": "orders-secret"}]}]}
//
// Actions (produce, fetch, group, describe, create, delete, alter, describe_configs,
// alter_configs, admin, all) stand for Kafka operations (actions); names may hold `*`
// wildcards; a deny wins over any allow; default_policy (deny unless "allow") decides what
// no rule mentions.
//
// The older Kafka-style format has allow rules only:
//
//	{"rules": [{"principal": "User:10.1.0.0/16", "operations": ["Write", "Describe"],
//	            "resource": {"type": "topic", "name": "orders", "patternType": "literal"}}]}
//
// A principal is "User:<name>" (matched exactly), "User:<CIDR>" (matched against principals
// whose name is an IP address) or "User:*" (everyone). Resource types are topic, group and
// cluster; patternType literal (default) or prefixed; the name "*" matches every resource of
// its type; cluster rules match whatever their name. Operations are Kafka's: Read, Write,
// Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs,
// IdempotentWrite and All; as in Kafka, Read, Write, Delete and Alter imply Describe.
package acl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Operation is a Kafka ACL operation.
type Operation string

// The operations rules may name.
const (
	Read            Operation = "Read"
	Write           Operation = "Write"
	Create          Operation = "Create"
	Delete          Operation = "Delete"
	Alter           Operation = "Alter"
	Describe        Operation = "Describe"
	ClusterAction   Operation = "ClusterAction"
	DescribeConfigs Operation = "DescribeConfigs"
	AlterConfigs    Operation = "AlterConfigs"
	IdempotentWrite Operation = "IdempotentWrite"
	All             Operation = "All"
)

var operations = map[string]Operation{}

func init() {
	for _, op := range []Operation{Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, All} {
		operations[strings.ToLower(string(op))] = op
	}
}

// ResourceType is what a rule protects.
type ResourceType string

// The resource types.
const (
	Topic   ResourceType = "topic"
	Group   ResourceType = "group"
	Cluster ResourceType = "cluster"
)

// Rule is one parsed rule.
type Rule struct {
	Principal  string // as written, e.g. "User:alice" or "analytics"
	Operations []Operation
	Type       ResourceType
	Name       string
	Prefixed   bool
	// Glob: Name holds `*` wildcards, each matching any run of characters (guide format).
	Glob bool
	// Deny: a matching request is denied whatever else allows it (guide format).
	Deny bool

	anyone bool         // User:* (or a guide principal named "*")
	prefix netip.Prefix // User:<CIDR> (valid) or User:<IP> (single address)
	name   string       // the principal without "User:"
	glob   bool         // name holds `*` wildcards (guide format)
}

// Rules is a parsed ACL document.
type Rules []Rule

type document struct {
	Rules *[]struct {
		Principal  string   `json:"principal"`
		Operations []string `json:"operations"`
		Resource   *struct {
			Type        string `json:"type"`
			Name        string `json:"name"`
			PatternType string `json:"patternType"`
		} `json:"resource"`
	} `json:"rules"`
}

// Parse reads an ACL document in either format. Errors name the rule (by index, from 0, or
// by principal and list) and what is wrong with it. An empty document has no rules.
func Parse(text string) (Rules, error) {
	if strings.TrimSpace(text) == "" {
		return nil, nil
	}
	var keys map[string]json.RawMessage
	// Only the first value decides the format; its parser reports text after it.
	if err := json.NewDecoder(strings.NewReader(text)).Decode(&keys); err != nil {
		return nil, fmt.Errorf("not a valid ACL document: %v", err)
	}
	_, legacy := keys["rules"]
	_, policy := keys["default_policy"]
	_, principals := keys["principals"]
	switch {
	case legacy && (policy || principals):
		return nil, errors.New(`not a valid ACL document: it mixes the two formats; use either {"default_policy": ..., "principals": [...]} or {"rules": [...]}`)
	case policy || principals:
		return parseGuide(text)
	}
	return parseLegacy(text)
}

func parseLegacy(text string) (Rules, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(text)))
	dec.DisallowUnknownFields()
	var doc document
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("not a valid ACL document: %v", err)
	}
	if dec.More() {
		return nil, errors.New("not a valid ACL document: text after the JSON object")
	}
	if doc.Rules == nil {
		return nil, errors.New(`not a valid ACL document: want {"default_policy": "deny", "principals": [...]} or {"rules": [...]}`)
	}
	var out Rules
	var errs []error
	for i, r := range *doc.Rules {
		rule, err := parseRule(r.Principal, r.Operations, r.Resource)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %d (principal %q): %v", i, r.Principal, err))
			continue
		}
		out = append(out, rule)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// setPrincipal fills in who the rule matches from the principal's name (after "User:"):
// everyone (`*`), a CIDR, an address, a name, or with globs a name with `*` wildcards.
func (r *Rule) setPrincipal(principal, name string, globs bool) error {
	r.name = name
	switch {
	case name == "*":
		r.anyone = true
	case globs && strings.Contains(name, "*"):
		r.glob = true
	case strings.Contains(name, "/"):
		p, err := netip.ParsePrefix(name)
		if err != nil {
			return fmt.Errorf("principal %q: bad CIDR: %v", principal, err)
		}
		r.prefix = p.Masked()
	default:
		if a, err := netip.ParseAddr(name); err == nil {
			a = a.Unmap()
			r.prefix = netip.PrefixFrom(a, a.BitLen())
		}
	}
	return nil
}

func parseRule(principal string, ops []string, res *struct {
	Type        string `json:"type"`
	Name        string `json:"name"`
	PatternType string `json:"patternType"`
}) (Rule, error) {
	r := Rule{Principal: principal}
	name, ok := strings.CutPrefix(principal, "User:")
	if !ok || name == "" {
		return r, errors.New(`principal must be "User:<name>", "User:<CIDR>" or "User:*"`)
	}
	if err := r.setPrincipal(principal, name, false); err != nil {
		return r, err
	}
	if len(ops) == 0 {
		return r, errors.New("no operations")
	}
	for _, o := range ops {
		op, ok := operations[strings.ToLower(o)]
		if !ok {
			return r, fmt.Errorf("unknown operation %q (want Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite or All)", o)
		}
		r.Operations = append(r.Operations, op)
	}
	if res == nil {
		return r, errors.New("no resource")
	}
	switch t := ResourceType(strings.ToLower(res.Type)); t {
	case Topic, Group, Cluster:
		r.Type = t
	default:
		return r, fmt.Errorf("resource type %q: want topic, group or cluster", res.Type)
	}
	switch strings.ToLower(res.PatternType) {
	case "", "literal":
	case "prefixed":
		r.Prefixed = true
	default:
		return r, fmt.Errorf("patternType %q: want literal or prefixed", res.PatternType)
	}
	r.Name = res.Name
	if r.Name == "" && r.Type != Cluster {
		return r, fmt.Errorf("%s resource without a name (use \"*\" for every %s)", r.Type, r.Type)
	}
	return r, nil
}

// Authorizer decides requests. The nil *Authorizer and a disabled one allow everything.
type Authorizer struct {
	enabled bool
	rules   Rules
}

// New returns an authorizer; when enabled, only what rules allow is allowed (no rules:
// nothing).
func New(enabled bool, rules Rules) *Authorizer {
	return &Authorizer{enabled: enabled, rules: rules}
}

// Enabled reports whether requests are checked at all.
func (a *Authorizer) Enabled() bool { return a != nil && a.enabled }

// Allow reports whether principal ("User:<name>") may perform op on the resource.
func (a *Authorizer) Allow(principal string, op Operation, typ ResourceType, name string) bool {
	if !a.Enabled() {
		return true
	}
	user, ok := strings.CutPrefix(principal, "User:")
	if !ok {
		return false
	}
	var addr netip.Addr
	if ip, err := netip.ParseAddr(user); err == nil {
		addr = ip.Unmap()
	}
	for i := range a.rules {
		r := &a.rules[i]
		if r.Deny && r.Type == typ && r.denies(op) && r.matchesPrincipal(user, addr) && r.matchesResource(name) {
			return false
		}
	}
	for i := range a.rules {
		r := &a.rules[i]
		if r.Deny || r.Type != typ || !r.grants(op) || !r.matchesPrincipal(user, addr) || !r.matchesResource(name) {
			continue
		}
		return true
	}
	return false
}

// denies reports whether a deny rule covers op: only the operations it names (All: every
// one), without the implications allow rules have, so denying fetch does not hide a topic
// from Metadata.
func (r *Rule) denies(op Operation) bool {
	for _, o := range r.Operations {
		if o == op || o == All {
			return true
		}
	}
	return false
}

func (r *Rule) grants(op Operation) bool {
	for _, o := range r.Operations {
		if o == op || o == All {
			return true
		}
		if op == Describe && (o == Read || o == Write || o == Delete || o == Alter) {
			return true
		}
		if op == DescribeConfigs && o == AlterConfigs {
			return true
		}
	}
	return false
}

func (r *Rule) matchesPrincipal(user string, addr netip.Addr) bool {
	switch {
	case r.anyone:
		return true
	case r.prefix.IsValid():
		return addr.IsValid() && r.prefix.Contains(addr)
	case r.glob:
		return wildcard(r.name, user)
	default:
		return r.name == user
	}
}

func (r *Rule) matchesResource(name string) bool {
	switch {
	case r.Type == Cluster, r.Name == "*":
		return true
	case r.Glob:
		return wildcard(r.Name, name)
	case r.Prefixed:
		return strings.HasPrefix(name, r.Name)
	default:
		return r.Name == name
	}
}

// wildcard matches s against pattern, where each `*` matches any run of characters
// (none included) and every other character only itself.
func wildcard(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}
