package server

import (
	"context"
	"strings"
	"testing"

	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (c *memCluster) AlterTopicConfigs(_ context.Context, name string, change metadata.ConfigChange, validateOnly bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := c.snap.Clone()
	t := next.Topic(name)
	if t == nil {
		return kerr.UnknownTopicOrPartition
	}
	if validateOnly {
		return nil
	}
	t.Configs = change.Apply(t.Configs)
	c.snap = next
	return nil
}

func (c *memCluster) AddPartitions(_ context.Context, name string, total int32, leaders []int32, validateOnly bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := c.snap.Clone()
	t := next.Topic(name)
	if t == nil {
		return kerr.UnknownTopicOrPartition
	}
	if err := metadata.CheckAddPartitions(t, total, leaders, next.Brokers); err != nil || validateOnly {
		return err
	}
	for i := int32(len(t.Partitions)); i < total; i++ {
		leader := c.leader
		if leaders != nil {
			leader = leaders[int(i)-len(c.snap.Topic(name).Partitions)]
		}
		t.Partitions = append(t.Partitions, metadata.Partition{ID: i, Leader: leader, LeaderEpoch: 1})
	}
	c.snap = next
	return nil
}

func describeTopic(t *testing.T, c *rawConn, version int16, topic string, names []string) kmsg.DescribeConfigsResponseResource {
	t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Version = version
	req.IncludeSynonyms, req.IncludeDocumentation = true, true
	r := kmsg.NewDescribeConfigsRequestResource()
	r.ResourceType, r.ResourceName, r.ConfigNames = kmsg.ConfigResourceTypeTopic, topic, names
	req.Resources = append(req.Resources, r)
	return c.roundTripExact(req).(*kmsg.DescribeConfigsResponse).Resources[0]
}

func configsOf(r kmsg.DescribeConfigsResponseResource) map[string]kmsg.DescribeConfigsResponseResourceConfig {
	out := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
	for _, c := range r.Configs {
		out[c.Name] = c
	}
	return out
}

func TestDescribeConfigs(t *testing.T) {
	b := startTestBroker(t, func(c *Config) {
		c.BrokerSettings = map[string]string{"KAFSCALE_SEGMENT_BYTES": "4194304"}
	})
	if err := b.cluster.CreateTopic(context.Background(), "orders", 1, map[string]string{"retention.ms": "1000", "cleanup.policy": "delete"}); err != nil {
		t.Fatal(err)
	}
	c := b.dial(t)
	for _, version := range []int16{0, 1, 3, 4} {
		got := configsOf(describeTopic(t, c, version, "orders", nil))
		cases := []struct {
			name, value string
			isDefault   bool
			readOnly    bool
		}{
			{"retention.ms", "1000", false, false},
			{"retention.bytes", "-1", true, false},
			{"cleanup.policy", "delete", false, true},
			{"compression.type", "producer", true, true},
		}
		for _, tc := range cases {
			e, ok := got[tc.name]
			if !ok {
				t.Fatalf("v%d: %s missing from %v", version, tc.name, got)
			}
			if *e.Value != tc.value || e.ReadOnly != tc.readOnly {
				t.Errorf("v%d %s: value %q readOnly %v, want %q %v", version, tc.name, *e.Value, e.ReadOnly, tc.value, tc.readOnly)
			}
			if version == 0 && e.IsDefault != tc.isDefault {
				t.Errorf("v0 %s: IsDefault %v", tc.name, e.IsDefault)
			}
			wantSource := kmsg.ConfigSourceDynamicTopicConfig
			if tc.isDefault {
				wantSource = kmsg.ConfigSourceDefaultConfig
			}
			if version >= 1 && (e.Source != wantSource || len(e.ConfigSynonyms) != 1) {
				t.Errorf("v%d %s: source %v synonyms %d", version, tc.name, e.Source, len(e.ConfigSynonyms))
			}
			if version >= 3 && (e.ConfigType == kmsg.ConfigTypeUnknown || e.Documentation == nil) {
				t.Errorf("v%d %s: type %v doc %v", version, tc.name, e.ConfigType, e.Documentation)
			}
		}
	}

	filtered := describeTopic(t, c, 4, "orders", []string{"retention.bytes", "no.such.config"})
	if len(filtered.Configs) != 1 || filtered.Configs[0].Name != "retention.bytes" {
		t.Fatalf("filtered: %+v", filtered.Configs)
	}
	if all := describeTopic(t, c, 1, "orders", []string{}); len(all.Configs) < len(metadata.TopicConfigDefaults) {
		t.Fatalf("empty ConfigNames answered %d configs, want all", len(all.Configs))
	}
	if r := describeTopic(t, c, 4, "ghost", nil); r.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: %v", kerr.ErrorForCode(r.ErrorCode))
	}

	req := kmsg.NewPtrDescribeConfigsRequest()
	for _, name := range []string{"0", "", "7"} {
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeBroker, name
		req.Resources = append(req.Resources, r)
	}
	resp := c.roundTrip(req).(*kmsg.DescribeConfigsResponse)
	if r := resp.Resources[0]; r.ErrorCode != 0 || len(r.Configs) != 1 || r.Configs[0].Name != "KAFSCALE_SEGMENT_BYTES" || !r.Configs[0].ReadOnly {
		t.Fatalf("broker 0: %+v", r)
	}
	if r := resp.Resources[1]; r.ErrorCode != 0 || len(r.Configs) != 0 {
		t.Fatalf("dynamic broker defaults: %+v", r)
	}
	if r := resp.Resources[2]; r.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("other broker: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}

func TestIncrementalAlterConfigs(t *testing.T) {
	set, del, app := kmsg.IncrementalAlterConfigOpSet, kmsg.IncrementalAlterConfigOpDelete, kmsg.IncrementalAlterConfigOpAppend
	type op struct {
		op          kmsg.IncrementalAlterConfigOp
		name, value string
	}
	cases := []struct {
		name         string
		typ          kmsg.ConfigResourceType
		resource     string
		ops          []op
		validateOnly bool
		want         *kerr.Error
		wantMsg      string
		wantConfigs  map[string]string
	}{
		{name: "set retention", ops: []op{{set, "retention.ms", "60000"}, {set, "retention.bytes", "-1"}},
			wantConfigs: map[string]string{"retention.ms": "60000", "retention.bytes": "-1", "cleanup.policy": "delete"}},
		{name: "delete retention.ms", ops: []op{{del, "retention.ms", ""}},
			wantConfigs: map[string]string{"retention.bytes": "1024", "cleanup.policy": "delete"}},
		{name: "validate only", ops: []op{{set, "retention.ms", "5"}}, validateOnly: true,
			wantConfigs: map[string]string{"retention.ms": "1000", "retention.bytes": "1024", "cleanup.policy": "delete"}},
		{name: "not whitelisted", ops: []op{{set, "segment.bytes", "1048576"}}, want: kerr.InvalidConfig,
			wantMsg: `"segment.bytes" cannot be changed; alterable configs are retention.ms, retention.bytes`},
		{name: "not a number", ops: []op{{set, "retention.ms", "7d"}}, want: kerr.InvalidConfig, wantMsg: "retention.ms"},
		{name: "below -1", ops: []op{{set, "retention.bytes", "-2"}}, want: kerr.InvalidConfig, wantMsg: ">= -1"},
		{name: "append", ops: []op{{app, "retention.ms", "1"}}, want: kerr.InvalidConfig, wantMsg: "not a list config"},
		{name: "unknown topic", resource: "ghost", ops: []op{{set, "retention.ms", "1"}}, want: kerr.UnknownTopicOrPartition},
		{name: "broker", typ: kmsg.ConfigResourceTypeBroker, resource: "0", ops: []op{{set, "log.retention.ms", "1"}}, want: kerr.PolicyViolation, wantMsg: "environment variables"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := startTestBroker(t)
			if err := b.cluster.CreateTopic(context.Background(), "orders", 1, map[string]string{"retention.ms": "1000", "retention.bytes": "1024", "cleanup.policy": "delete"}); err != nil {
				t.Fatal(err)
			}
			c := b.dial(t)
			req := kmsg.NewPtrIncrementalAlterConfigsRequest()
			req.ValidateOnly = tc.validateOnly
			r := kmsg.NewIncrementalAlterConfigsRequestResource()
			r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, "orders"
			if tc.typ != 0 {
				r.ResourceType = tc.typ
			}
			if tc.resource != "" {
				r.ResourceName = tc.resource
			}
			for _, o := range tc.ops {
				rc := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
				rc.Op, rc.Name = o.op, o.name
				if o.op != del {
					rc.Value = kmsg.StringPtr(o.value)
				}
				r.Configs = append(r.Configs, rc)
			}
			req.Resources = append(req.Resources, r)
			got := c.roundTrip(req).(*kmsg.IncrementalAlterConfigsResponse).Resources[0]
			checkAdminError(t, got.ErrorCode, got.ErrorMessage, tc.want, tc.wantMsg)
			if tc.wantConfigs != nil {
				checkConfigs(t, b.cluster.Snapshot().Topic("orders").Configs, tc.wantConfigs)
			}
		})
	}
}

func checkAdminError(t *testing.T, code int16, msg *string, want *kerr.Error, wantMsg string) {
	t.Helper()
	wantCode := int16(0)
	if want != nil {
		wantCode = want.Code
	}
	if code != wantCode {
		t.Fatalf("error %v (%v), want %v", kerr.ErrorForCode(code), msg, want)
	}
	if wantMsg != "" && (msg == nil || !strings.Contains(*msg, wantMsg)) {
		t.Fatalf("message %v does not contain %q", msg, wantMsg)
	}
}

func checkConfigs(t *testing.T, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("configs %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("configs %v, want %v", got, want)
		}
	}
}

func TestAlterConfigsReplacesAlterableKeys(t *testing.T) {
	b := startTestBroker(t)
	if err := b.cluster.CreateTopic(context.Background(), "orders", 1, map[string]string{"retention.ms": "1000", "retention.bytes": "1024", "cleanup.policy": "delete"}); err != nil {
		t.Fatal(err)
	}
	c := b.dial(t)
	alter := func(validateOnly bool, kv ...string) kmsg.AlterConfigsResponseResource {
		req := kmsg.NewPtrAlterConfigsRequest()
		req.ValidateOnly = validateOnly
		r := kmsg.NewAlterConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, "orders"
		for i := 0; i < len(kv); i += 2 {
			rc := kmsg.NewAlterConfigsRequestResourceConfig()
			rc.Name, rc.Value = kv[i], kmsg.StringPtr(kv[i+1])
			r.Configs = append(r.Configs, rc)
		}
		req.Resources = append(req.Resources, r)
		return c.roundTrip(req).(*kmsg.AlterConfigsResponse).Resources[0]
	}
	r := alter(false, "retention.ms", "86400000")
	checkAdminError(t, r.ErrorCode, r.ErrorMessage, nil, "")
	// retention.bytes is not named, so it goes back to its default; cleanup.policy is kept.
	checkConfigs(t, b.cluster.Snapshot().Topic("orders").Configs, map[string]string{"retention.ms": "86400000", "cleanup.policy": "delete"})

	r = alter(false, "retention.ms", "1", "max.message.bytes", "10")
	checkAdminError(t, r.ErrorCode, r.ErrorMessage, kerr.InvalidConfig, `"max.message.bytes" cannot be changed`)
	r = alter(true, "retention.bytes", "5")
	checkAdminError(t, r.ErrorCode, r.ErrorMessage, nil, "")
	checkConfigs(t, b.cluster.Snapshot().Topic("orders").Configs, map[string]string{"retention.ms": "86400000", "cleanup.policy": "delete"})
}

func TestCreatePartitions(t *testing.T) {
	assign := func(replicas ...[]int32) []kmsg.CreatePartitionsRequestTopicAssignment {
		var out []kmsg.CreatePartitionsRequestTopicAssignment
		for _, r := range replicas {
			out = append(out, kmsg.CreatePartitionsRequestTopicAssignment{Replicas: r})
		}
		return out
	}
	cases := []struct {
		name         string
		topic        string
		count        int32
		assignment   []kmsg.CreatePartitionsRequestTopicAssignment
		validateOnly bool
		want         *kerr.Error
		wantMsg      string
		wantCount    int
	}{
		{name: "grow", count: 4, wantCount: 4},
		{name: "equal", count: 2, want: kerr.InvalidPartitions, wantMsg: "partitions can only be added", wantCount: 2},
		{name: "shrink", count: 1, want: kerr.InvalidPartitions, wantMsg: "has 2 partitions; asked for 1", wantCount: 2},
		{name: "too many", count: 10001, want: kerr.InvalidPartitions, wantCount: 2},
		{name: "validate only", count: 3, validateOnly: true, wantCount: 2},
		{name: "live assignment", count: 3, assignment: assign([]int32{0}), wantCount: 3},
		{name: "dead broker", count: 3, assignment: assign([]int32{5}), want: kerr.InvalidReplicaAssignment, wantMsg: "broker 5", wantCount: 2},
		{name: "short assignment", count: 4, assignment: assign([]int32{0}), want: kerr.InvalidReplicaAssignment, wantCount: 2},
		{name: "unknown topic", topic: "ghost", count: 3, want: kerr.UnknownTopicOrPartition, wantCount: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := startTestBroker(t)
			b.createTopic(t, "orders", 2)
			c := b.dial(t)
			req := kmsg.NewPtrCreatePartitionsRequest()
			req.TimeoutMillis, req.ValidateOnly = 5000, tc.validateOnly
			rt := kmsg.NewCreatePartitionsRequestTopic()
			rt.Topic, rt.Count, rt.Assignment = "orders", tc.count, tc.assignment
			if tc.topic != "" {
				rt.Topic = tc.topic
			}
			req.Topics = append(req.Topics, rt)
			got := c.roundTrip(req).(*kmsg.CreatePartitionsResponse).Topics[0]
			checkAdminError(t, got.ErrorCode, got.ErrorMessage, tc.want, tc.wantMsg)
			if n := len(b.cluster.Snapshot().Topic("orders").Partitions); n != tc.wantCount {
				t.Fatalf("%d partitions, want %d", n, tc.wantCount)
			}
		})
	}
}

func TestMutatingConfigAPIsCanBeDisabled(t *testing.T) {
	b := startTestBroker(t, func(c *Config) { c.AllowAdminAPIs = false })
	b.createTopic(t, "keep", 1)
	c := b.dial(t)
	ia := kmsg.NewPtrIncrementalAlterConfigsRequest()
	ia.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "keep",
		Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: kmsg.StringPtr("1")}}}}
	a := kmsg.NewPtrAlterConfigsRequest()
	a.Resources = []kmsg.AlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "keep"}}
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "keep", Count: 2}}

	r1 := c.roundTrip(ia).(*kmsg.IncrementalAlterConfigsResponse).Resources[0]
	checkAdminError(t, r1.ErrorCode, r1.ErrorMessage, kerr.ClusterAuthorizationFailed, "KAFSCALE_ALLOW_ADMIN_APIS=false")
	r2 := c.roundTrip(a).(*kmsg.AlterConfigsResponse).Resources[0]
	checkAdminError(t, r2.ErrorCode, r2.ErrorMessage, kerr.ClusterAuthorizationFailed, "KAFSCALE_ALLOW_ADMIN_APIS=false")
	r3 := c.roundTrip(cp).(*kmsg.CreatePartitionsResponse).Topics[0]
	checkAdminError(t, r3.ErrorCode, r3.ErrorMessage, kerr.ClusterAuthorizationFailed, "KAFSCALE_ALLOW_ADMIN_APIS=false")
	if got := b.cluster.Snapshot().Topic("keep"); len(got.Partitions) != 1 || got.Configs != nil {
		t.Fatalf("topic changed: %+v", got)
	}
	// Describing stays allowed.
	if r := describeTopic(t, c, 4, "keep", nil); r.ErrorCode != 0 {
		t.Fatalf("describe: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}
