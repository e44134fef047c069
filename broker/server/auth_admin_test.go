package server

import (
	"testing"

	"github.com/kafscale/kafscale/broker/acl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The config and partition admin APIs check DescribeConfigs, AlterConfigs and Alter as
// Kafka does: a denied topic is answered TOPIC_AUTHORIZATION_FAILED in its place, broker
// resources need the permission on the cluster, and nothing denied is changed.
func TestACLConfigAndPartitionAPIs(t *testing.T) {
	rules, err := acl.Parse(`{"rules": [
	  {"principal": "User:test", "operations": ["DescribeConfigs", "AlterConfigs", "Alter"], "resource": {"type": "topic", "name": "ops"}}
	]}`)
	if err != nil {
		t.Fatal(err)
	}
	b := startAuthBroker(t, func(c *Config) { c.Authorizer = acl.New(true, rules) })
	b.createTopic(t, "ops", 1)
	b.createTopic(t, "secret", 1)
	c := b.dial(t)

	dc := kmsg.NewPtrDescribeConfigsRequest()
	for _, r := range []struct {
		typ  kmsg.ConfigResourceType
		name string
	}{{kmsg.ConfigResourceTypeTopic, "ops"}, {kmsg.ConfigResourceTypeTopic, "secret"}, {kmsg.ConfigResourceTypeBroker, "0"}} {
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = r.typ, r.name
		dc.Resources = append(dc.Resources, rr)
	}
	dresp := c.roundTrip(dc).(*kmsg.DescribeConfigsResponse)
	wantCode(t, "describe ops", dresp.Resources[0].ErrorCode, nil)
	wantCode(t, "describe secret", dresp.Resources[1].ErrorCode, kerr.TopicAuthorizationFailed)
	wantCode(t, "describe broker", dresp.Resources[2].ErrorCode, kerr.ClusterAuthorizationFailed)
	if len(dresp.Resources[1].Configs) != 0 || len(dresp.Resources[2].Configs) != 0 {
		t.Fatalf("denied resources still listed configs: %+v", dresp.Resources[1:])
	}

	inc := kmsg.NewPtrIncrementalAlterConfigsRequest()
	for _, name := range []string{"ops", "secret"} {
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, name
		cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		cfg.Name, cfg.Op, cfg.Value = "retention.ms", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("60000")
		rr.Configs = append(rr.Configs, cfg)
		inc.Resources = append(inc.Resources, rr)
	}
	iresp := c.roundTrip(inc).(*kmsg.IncrementalAlterConfigsResponse)
	wantCode(t, "alter ops", iresp.Resources[0].ErrorCode, nil)
	wantCode(t, "alter secret", iresp.Resources[1].ErrorCode, kerr.TopicAuthorizationFailed)
	if got := b.cluster.Snapshot().Topic("secret").Configs["retention.ms"]; got != "" {
		t.Fatalf("denied alter changed secret's retention.ms to %q", got)
	}
	if got := b.cluster.Snapshot().Topic("ops").Configs["retention.ms"]; got != "60000" {
		t.Fatalf("allowed alter: ops retention.ms = %q, want 60000", got)
	}

	ac := kmsg.NewPtrAlterConfigsRequest()
	rr := kmsg.NewAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, "0"
	ac.Resources = append(ac.Resources, rr)
	aresp := c.roundTrip(ac).(*kmsg.AlterConfigsResponse)
	wantCode(t, "alter broker", aresp.Resources[0].ErrorCode, kerr.ClusterAuthorizationFailed)

	cp := kmsg.NewPtrCreatePartitionsRequest()
	for _, name := range []string{"ops", "secret"} {
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = name, 2
		cp.Topics = append(cp.Topics, rt)
	}
	cp.TimeoutMillis = 5000
	cresp := c.roundTrip(cp).(*kmsg.CreatePartitionsResponse)
	wantCode(t, "add partitions ops", cresp.Topics[0].ErrorCode, nil)
	wantCode(t, "add partitions secret", cresp.Topics[1].ErrorCode, kerr.TopicAuthorizationFailed)
	if n := len(b.cluster.Snapshot().Topic("secret").Partitions); n != 1 {
		t.Fatalf("denied CreatePartitions grew secret to %d partitions", n)
	}
	if n := b.denied("DescribeConfigs") + b.denied("IncrementalAlterConfigs") + b.denied("AlterConfigs") + b.denied("CreatePartitions"); n != 5 {
		t.Errorf("kafscale_acl_denied_total over the admin APIs = %v, want 5", n)
	}
}
