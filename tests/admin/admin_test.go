// Package admin runs the topic configuration and partition commands of docs/operations.md
// with franz-go kadm and IBM/sarama's ClusterAdmin against the real broker binary, a real
// etcd and a real S3 server (tests/testenv).
package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafscale/kafscale/tests/brokertest"
	"github.com/kafscale/kafscale/tests/testenv"
)

// startBroker runs broker 0 against a fresh etcd and S3 with extra KAFSCALE_* settings and
// returns its Kafka address once /readyz answers.
func startBroker(t *testing.T, extra ...string) string {
	t.Helper()
	b := brokertest.Start(t, brokertest.Options{Etcd: testenv.StartEtcd(t), S3: testenv.StartS3(t), Env: extra})
	return b.Addr
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newAdmin(t *testing.T, addr string, opts ...kgo.Opt) (*kgo.Client, *kadm.Client) {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl, kadm.NewClient(cl)
}

func configValue(rc kadm.ResourceConfig, key string) (kadm.Config, bool) {
	for _, c := range rc.Configs {
		if c.Key == key {
			return c, true
		}
	}
	return kadm.Config{}, false
}

func str(s string) *string { return &s }

// TestTopicConfigsAndPartitions follows docs/operations.md "Topic configuration and
// partitions" with kadm.
func TestTopicConfigsAndPartitions(t *testing.T) {
	addr := startBroker(t)
	ctx := testContext(t)
	cl, adm := newAdmin(t, addr)
	if _, err := adm.CreateTopic(ctx, 2, -1, map[string]*string{"cleanup.policy": str("delete")}, "orders"); err != nil {
		t.Fatal(err)
	}

	// Describe: the topic's own config and the documented defaults.
	rcs, err := adm.DescribeTopicConfigs(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("orders", nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe: %v %v", err, rc.Err)
	}
	if c, ok := configValue(rc, "cleanup.policy"); !ok || *c.Value != "delete" || c.Source != 1 {
		t.Fatalf("cleanup.policy: %+v", c)
	}
	if c, ok := configValue(rc, "retention.ms"); !ok || *c.Value != "604800000" || c.Source != 5 {
		t.Fatalf("retention.ms default: %+v", c)
	}
	t.Logf("orders has %d configs", len(rc.Configs))
	missing, _ := adm.DescribeTopicConfigs(ctx, "ghost")
	if r, _ := missing.On("ghost", nil); !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("unknown topic: %v", r.Err)
	}

	// Set retention.ms (IncrementalAlterConfigs) and read it back.
	alter := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: str("3600000")}}
	ars, err := adm.AlterTopicConfigs(ctx, alter, "orders")
	if err != nil || ars[0].Err != nil {
		t.Fatalf("alter: %v %+v", err, ars)
	}
	rcs, _ = adm.DescribeTopicConfigs(ctx, "orders")
	if c, _ := configValue(rcs[0], "retention.ms"); c.Value == nil || *c.Value != "3600000" || c.Source != 1 {
		t.Fatalf("retention.ms after alter: %+v", c)
	}

	// A key outside the whitelist is refused with a message naming it and the allowed ones.
	ars, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "segment.bytes", Value: str("1048576")}}, "orders")
	if err != nil || !errors.Is(ars[0].Err, kerr.InvalidConfig) || !strings.Contains(ars[0].ErrMessage, "segment.bytes") || !strings.Contains(ars[0].ErrMessage, "retention.ms, retention.bytes") {
		t.Fatalf("segment.bytes: %v %+v", err, ars)
	}
	t.Logf("segment.bytes refused: %s", ars[0].ErrMessage)
	ars, _ = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.bytes", Value: str("-2")}}, "orders")
	if !errors.Is(ars[0].Err, kerr.InvalidConfig) {
		t.Fatalf("retention.bytes=-2: %+v", ars)
	}

	// ValidateOnly checks without writing.
	vrs, err := adm.ValidateAlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: str("-1")}}, "orders")
	if err != nil || vrs[0].Err != nil {
		t.Fatalf("validate alter: %v %+v", err, vrs)
	}
	vcs, err := adm.ValidateUpdatePartitions(ctx, 3, "orders")
	if err != nil || vcs["orders"].Err != nil {
		t.Fatalf("validate partitions: %v %+v", err, vcs)
	}
	rcs, _ = adm.DescribeTopicConfigs(ctx, "orders")
	td, err := adm.ListTopics(ctx, "orders")
	if c, _ := configValue(rcs[0], "retention.ms"); err != nil || *c.Value != "3600000" || len(td["orders"].Partitions) != 2 {
		t.Fatalf("validate-only requests changed the topic: %+v, %d partitions", c, len(td["orders"].Partitions))
	}

	// An assignment naming a live broker is followed; one naming another is refused.
	assigned := func(brokers ...int32) kmsg.CreatePartitionsResponseTopic {
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.TimeoutMillis = 10000
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = "orders", int32(2+len(brokers))
		for _, b := range brokers {
			rt.Assignment = append(rt.Assignment, kmsg.CreatePartitionsRequestTopicAssignment{Replicas: []int32{b}})
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0]
	}
	if r := assigned(7); r.ErrorCode != kerr.InvalidReplicaAssignment.Code || r.ErrorMessage == nil || !strings.Contains(*r.ErrorMessage, "broker 7") {
		t.Fatalf("assignment to broker 7: %v %v", kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
	}
	if r := assigned(0); r.ErrorCode != 0 {
		t.Fatalf("assignment to broker 0: %v %v", kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
	}

	// Add partitions, then produce to and consume from a new one.
	cps, err := adm.UpdatePartitions(ctx, 4, "orders")
	if err != nil || cps["orders"].Err != nil {
		t.Fatalf("update partitions: %v %+v", err, cps)
	}
	cps, _ = adm.UpdatePartitions(ctx, 2, "orders")
	if r := cps["orders"]; !errors.Is(r.Err, kerr.InvalidPartitions) || !strings.Contains(r.ErrMessage, "partitions can only be added") {
		t.Fatalf("shrink: %+v", r)
	}
	t.Logf("shrink refused: %s", cps["orders"].ErrMessage)
	td, err = adm.ListTopics(ctx, "orders")
	if err != nil || len(td["orders"].Partitions) != 4 {
		t.Fatalf("metadata after adding: %v %+v", err, td["orders"])
	}

	// Partition 2 (led as assigned) and 3 (placed by the broker) take produce and fetch.
	producer, _ := newAdmin(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for _, p := range []int32{2, 3} {
		r := &kgo.Record{Topic: "orders", Partition: p, Value: []byte(fmt.Sprintf("to-new-partition-%d", p))}
		if err := producer.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce to partition %d: %v", p, err)
		}
	}
	consumer, _ := newAdmin(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		"orders": {2: kgo.NewOffset().AtStart(), 3: kgo.NewOffset().AtStart()}}))
	got := map[int32]string{}
	for len(got) < 2 && ctx.Err() == nil {
		fetches := consumer.PollFetches(ctx)
		if err := fetches.Err(); err != nil {
			t.Fatal(err)
		}
		for _, r := range fetches.Records() {
			if r.Offset != 0 {
				t.Fatalf("record at offset %d of partition %d", r.Offset, r.Partition)
			}
			got[r.Partition] = string(r.Value)
		}
	}
	if got[2] != "to-new-partition-2" || got[3] != "to-new-partition-3" {
		t.Fatalf("consumed %v", got)
	}

	// The broker's safe settings, without credentials.
	brs, err := adm.DescribeBrokerConfigs(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := configValue(brs[0], "KAFSCALE_ALLOW_ADMIN_APIS"); !ok || *c.Value != "true" {
		t.Fatalf("broker configs: %+v", brs[0])
	}
	for _, c := range brs[0].Configs {
		if strings.Contains(c.Key, "SECRET") || strings.Contains(c.Key, "ACCESS_KEY") || strings.Contains(c.Key, "PASSWORD") {
			t.Fatalf("broker config %s shown", c.Key)
		}
	}
}

// TestSaramaClusterAdmin: AlterConfigs (replace) and DescribeConfigs with IBM/sarama.
func TestSaramaClusterAdmin(t *testing.T) {
	addr := startBroker(t)
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	adm, err := sarama.NewClusterAdmin([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if err := adm.CreateTopic("payments", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	if err := adm.AlterConfig(sarama.TopicResource, "payments", map[string]*string{"retention.bytes": str("1073741824")}, false); err != nil {
		t.Fatal(err)
	}
	results, err := adm.DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.TopicResource, Name: "payments", ConfigNames: []string{"retention.bytes"}}},
		sarama.DescribeConfigsOptions{IncludeSynonyms: true, IncludeDocumentation: true})
	if err != nil || len(results) != 1 || results[0].ErrorCode != sarama.ErrNoError || len(results[0].Configs) != 1 {
		t.Fatalf("describe: %v %+v", err, results)
	}
	if e := results[0].Configs[0]; e.Value != "1073741824" || e.Default || e.ReadOnly || e.Source != sarama.SourceTopic || e.Documentation == nil {
		t.Fatalf("retention.bytes: %+v", e)
	}
	err = adm.AlterConfig(sarama.TopicResource, "payments", map[string]*string{"compression.type": str("zstd")}, false)
	if !errors.Is(err, sarama.ErrInvalidConfig) || !strings.Contains(err.Error(), "compression.type") {
		t.Fatalf("compression.type: %v", err)
	}
	err = adm.CreatePartitions("payments", 1, nil, false)
	if !errors.Is(err, sarama.ErrInvalidPartitions) {
		t.Fatalf("equal count: %v", err)
	}
}

// TestMutationsRefusedWhenAdminAPIsDisabled: with KAFSCALE_ALLOW_ADMIN_APIS=false describing
// works and every mutation is refused with a message naming the variable.
func TestMutationsRefusedWhenAdminAPIsDisabled(t *testing.T) {
	addr := startBroker(t, "KAFSCALE_ALLOW_ADMIN_APIS=false")
	ctx := testContext(t)
	cl, adm := newAdmin(t, addr, kgo.AllowAutoTopicCreation())
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "auto", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("produce (auto-create): %v", err)
	}
	if rcs, err := adm.DescribeTopicConfigs(ctx, "auto"); err != nil || rcs[0].Err != nil {
		t.Fatalf("describe: %v %+v", err, rcs)
	}
	const msg = "KAFSCALE_ALLOW_ADMIN_APIS=false"
	set := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: str("1000")}}
	ars, err := adm.AlterTopicConfigs(ctx, set, "auto")
	if err != nil || !errors.Is(ars[0].Err, kerr.ClusterAuthorizationFailed) || !strings.Contains(ars[0].ErrMessage, msg) {
		t.Fatalf("incremental alter: %v %+v", err, ars)
	}
	ars, err = adm.AlterTopicConfigsState(ctx, set, "auto")
	if err != nil || !errors.Is(ars[0].Err, kerr.ClusterAuthorizationFailed) || !strings.Contains(ars[0].ErrMessage, msg) {
		t.Fatalf("alter: %v %+v", err, ars)
	}
	cps, err := adm.UpdatePartitions(ctx, 3, "auto")
	if err != nil || !errors.Is(cps["auto"].Err, kerr.ClusterAuthorizationFailed) || !strings.Contains(cps["auto"].ErrMessage, msg) {
		t.Fatalf("create partitions: %v %+v", err, cps)
	}
	td, err := adm.ListTopics(ctx, "auto")
	if err != nil || len(td["auto"].Partitions) != 1 {
		t.Fatalf("partitions changed: %v %+v", err, td["auto"])
	}
}
