package acl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Action is an action of the guide's ACL format: a name for the Kafka operations a kind of
// client needs, on the resource types it applies to.
type Action struct {
	Operations []Operation
	Resources  []ResourceType
}

// Actions are the guide format's actions. docs/operations.md lists them with the Kafka
// requests each one lets through; keep the two in step.
var Actions = map[string]Action{
	// Produce and InitProducerId (idempotent producers need Write on some topic).
	"produce": {[]Operation{Write}, []ResourceType{Topic}},
	// Fetch, ListOffsets, OffsetForLeaderEpoch, Metadata of the topic, and the topic side of
	// OffsetCommit/OffsetFetch.
	"fetch": {[]Operation{Read}, []ResourceType{Topic}},
	// Consumer group membership and offsets: FindCoordinator, JoinGroup, SyncGroup,
	// Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, DescribeGroups.
	"group": {[]Operation{Read}, []ResourceType{Group}},
	// Metadata, ListOffsets, OffsetForLeaderEpoch (topic); FindCoordinator, DescribeGroups,
	// OffsetFetch (group); DescribeCluster and listing every group (cluster).
	"describe": {[]Operation{Describe}, []ResourceType{Topic, Group, Cluster}},
	// CreateTopics and auto-creation: on a topic, or on the cluster for every topic.
	"create": {[]Operation{Create}, []ResourceType{Topic, Cluster}},
	// DeleteTopics (topic); DeleteGroups, OffsetDelete (group).
	"delete": {[]Operation{Delete}, []ResourceType{Topic, Group}},
	// CreatePartitions.
	"alter": {[]Operation{Alter}, []ResourceType{Topic}},
	// DescribeConfigs of topics, or of brokers (cluster).
	"describe_configs": {[]Operation{DescribeConfigs}, []ResourceType{Topic, Cluster}},
	// AlterConfigs and IncrementalAlterConfigs (and DescribeConfigs).
	"alter_configs": {[]Operation{AlterConfigs}, []ResourceType{Topic, Cluster}},
	// Every administrative action above: create, delete, alter, describe_configs,
	// alter_configs (and describe, which delete and alter imply).
	"admin": {[]Operation{Create, Delete, Alter, DescribeConfigs, AlterConfigs}, []ResourceType{Topic, Group, Cluster}},
	// Everything on the resource.
	"all": {[]Operation{All}, []ResourceType{Topic, Group, Cluster}},
}

// ActionNames lists the actions, sorted.
func ActionNames() []string {
	out := make([]string, 0, len(Actions))
	for n := range Actions {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

type guideDocument struct {
	DefaultPolicy *string `json:"default_policy"`
	Principals    []struct {
		Name  string       `json:"name"`
		Allow []guideEntry `json:"allow"`
		Deny  []guideEntry `json:"deny"`
	} `json:"principals"`
}

type guideEntry struct {
	Action   string `json:"action"`
	Resource string `json:"resource"`
	Name     string `json:"name"`
}

// parseGuide reads the guide's format. A default_policy of "allow" becomes allow-everything
// rules after the others; deny rules are checked first, so they still win.
func parseGuide(text string) (Rules, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(text)))
	dec.DisallowUnknownFields()
	var doc guideDocument
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("not a valid ACL document: %v", err)
	}
	if dec.More() {
		return nil, errors.New("not a valid ACL document: text after the JSON object")
	}
	defaultAllow := false
	if doc.DefaultPolicy != nil {
		switch strings.ToLower(strings.TrimSpace(*doc.DefaultPolicy)) {
		case "deny":
		case "allow":
			defaultAllow = true
		default:
			return nil, fmt.Errorf(`default_policy %q: want "deny" or "allow"`, *doc.DefaultPolicy)
		}
	}
	var out Rules
	var errs []error
	for i, p := range doc.Principals {
		if strings.TrimSpace(p.Name) == "" {
			errs = append(errs, fmt.Errorf("principal %d: no name", i))
			continue
		}
		for _, list := range []struct {
			key     string
			entries []guideEntry
		}{{"allow", p.Allow}, {"deny", p.Deny}} {
			for j, e := range list.entries {
				r, err := guideRule(p.Name, e, list.key == "deny")
				if err != nil {
					errs = append(errs, fmt.Errorf("principal %q, %s %d: %v", p.Name, list.key, j, err))
					continue
				}
				out = append(out, r)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if defaultAllow {
		for _, t := range []ResourceType{Topic, Group, Cluster} {
			out = append(out, Rule{Principal: "*", Operations: []Operation{All}, Type: t, Name: "*", anyone: true, name: "*"})
		}
	}
	return out, nil
}

func guideRule(principal string, e guideEntry, deny bool) (Rule, error) {
	r := Rule{Principal: principal, Deny: deny}
	name := strings.TrimPrefix(strings.TrimSpace(principal), "User:")
	if err := r.setPrincipal(principal, name, true); err != nil {
		return r, err
	}
	action, ok := Actions[strings.ToLower(e.Action)]
	if !ok {
		if e.Action == "*" {
			action = Actions["all"]
		} else {
			return r, fmt.Errorf("unknown action %q (want %s)", e.Action, strings.Join(ActionNames(), ", "))
		}
	}
	r.Type = ResourceType(strings.ToLower(e.Resource))
	valid := false
	var names []string
	for _, t := range action.Resources {
		names = append(names, string(t))
		valid = valid || t == r.Type
	}
	if !valid {
		return r, fmt.Errorf("action %q applies to resource %s, not %q", e.Action, strings.Join(names, " or "), e.Resource)
	}
	r.Operations = action.Operations
	r.Name = e.Name
	switch {
	case r.Type == Cluster:
	case r.Name == "":
		return r, fmt.Errorf("%s without a name (use \"*\" for every %s)", r.Type, r.Type)
	case r.Name != "*" && strings.Contains(r.Name, "*"):
		r.Glob = true
	}
	return r, nil
}

// ActionFor names the guide action that allows op on a resource of type typ, for log lines:
// "fetch" for Read on a topic, "group" for Read on a group, and so on.
func ActionFor(op Operation, typ ResourceType) string {
	switch op {
	case Write:
		return "produce"
	case Read:
		if typ == Group {
			return "group"
		}
		return "fetch"
	case IdempotentWrite:
		return "produce"
	case Describe:
		return "describe"
	case Create:
		return "create"
	case Delete:
		return "delete"
	case Alter:
		return "alter"
	case DescribeConfigs:
		return "describe_configs"
	case AlterConfigs:
		return "alter_configs"
	}
	return strings.ToLower(string(op))
}
