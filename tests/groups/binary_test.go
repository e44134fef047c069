package groups_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kafscale/kafscale/broker/groups"
	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/kafscale/kafscale/tests/brokertest"
	"github.com/kafscale/kafscale/tests/testenv"
)

// startBinary runs the broker binary on this cluster's etcd and S3, under its keys, with
// extra KAFSCALE_* settings.
func (c *cluster) startBinary(node int, extra ...string) *brokertest.Broker {
	c.t.Helper()
	return brokertest.Start(c.t, brokertest.Options{NodeID: node, Etcd: c.etcd, S3: c.s3, Env: append([]string{
		"KAFSCALE_CLUSTER_NAMESPACE=" + c.keys.Namespace,
		"KAFSCALE_CLUSTER_NAME=" + c.keys.Cluster,
		"KAFSCALE_FLUSH_INTERVAL_MS=20",
		"KAFSCALE_ALLOW_ADMIN_APIS=true",
		"KAFSCALE_GROUP_INITIAL_REBALANCE_DELAY_MS=0",
	}, extra...)})
}

func (c *cluster) binClient(extra []kgo.Opt, brokers ...*brokertest.Broker) *kgo.Client {
	c.t.Helper()
	var seeds []string
	for _, b := range brokers {
		seeds = append(seeds, b.Addr)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.RetryTimeout(60 * time.Second)}, extra...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

func (c *cluster) binProduce(cl *kgo.Client, topic string, partitions int32, prefix string, count int) []string {
	c.t.Helper()
	var recs []*kgo.Record
	var values []string
	for i := range count {
		v := prefix + "-" + strconv.Itoa(i)
		recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(i) % partitions, Value: []byte(v)})
		values = append(values, v)
	}
	if err := cl.ProduceSync(testenv.Context(c.t, 90*time.Second), recs...).FirstErr(); err != nil {
		c.t.Fatalf("produce: %v", err)
	}
	return values
}

// binConsumer is franzConsumer against binary brokers.
func (c *cluster) binConsumer(name, group, topic string, brokers ...*brokertest.Broker) *franzConsumer {
	var seeds []string
	for _, p := range brokers {
		seeds = append(seeds, p.Addr)
	}
	return c.franzConsumerSeeds(seeds, name, group, topic)
}

// TestBinaryRestartKeepsGroup: the broker binary is stopped (SIGTERM) and started again while
// a group member keeps running; the member carries on from its committed offsets — the
// restarted coordinator loads the group and offsets from etcd — and nothing is consumed twice.
func TestBinaryRestartKeepsGroup(t *testing.T) {
	c := newCluster(t)
	b := c.startBinary(1)
	const topic, group = "restart-topic", "restart-group"
	cl := c.binClient([]kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DisableIdempotentWrite()}, b)
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(testenv.Context(t, 30*time.Second), 3, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	batchA := c.binProduce(cl, topic, 3, "a", 90)
	m := c.binConsumer("m", group, topic, b)
	waitAll(t, batchA, m.consumed)
	testenv.Eventually(t, 60*time.Second, func() error {
		if got := sum(c.committedVia(adm, group)[topic]); got != 90 {
			return fmt.Errorf("committed %d of 90", got)
		}
		return nil
	})
	before := describeStable(t, adm, group, 1)

	b.Stop()
	b.Start()

	committed := c.committedVia(adm, group)[topic]
	for p := int32(0); p < 3; p++ {
		if committed[p] != 30 {
			t.Fatalf("after restart partition %d committed at %d, want 30 (%v)", p, committed[p], committed)
		}
	}
	batchB := c.binProduce(cl, topic, 3, "b", 60)
	s := waitAll(t, append(append([]string{}, batchA...), batchB...), m.consumed)
	if len(s.dups) > 0 {
		t.Fatalf("%d records consumed twice across the restart, e.g. %s", len(s.dups), s.dups[0])
	}
	after := describeStable(t, adm, group, 1)
	t.Logf("member %s before the restart, %s after", before.Members[0].MemberID, after.Members[0].MemberID)

	// a new member of the group after the restart starts where the group left off
	m.close()
	batchC := c.binProduce(cl, topic, 3, "c", 30)
	m2 := c.binConsumer("m2", group, topic, b)
	waitAll(t, batchC, m2.consumed)
	for _, v := range m2.consumed() {
		if v[0] != 'c' {
			t.Fatalf("the group re-consumed %s after the restart", v)
		}
	}
}

// TestBinaryCoordinatorMoves: two brokers; the broker coordinating a group is stopped; the
// other one takes the group over from etcd and its member goes on without losing offsets.
func TestBinaryCoordinatorMoves(t *testing.T) {
	c := newCluster(t)
	b1, b2 := c.startBinary(1), c.startBinary(2)
	two := &metadata.Snapshot{Brokers: []metadata.Broker{{NodeID: 1}, {NodeID: 2}}}
	group := ""
	for i := 0; group == ""; i++ {
		if id := "moving-" + strconv.Itoa(i); groups.CoordinatorFor(two, id) == 2 {
			group = id
		}
	}
	const topic = "moving-topic"
	cl := c.binClient([]kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DisableIdempotentWrite()}, b1, b2)
	adm := kadm.NewClient(cl)
	testenv.Eventually(t, 60*time.Second, func() error {
		m, err := adm.BrokerMetadata(testenv.Context(t, 10*time.Second))
		if err != nil {
			return err
		}
		if len(m.Brokers) != 2 {
			resp, _ := c.cli.Get(testenv.Context(t, 5*time.Second), c.keys.Prefix(), clientv3.WithPrefix(), clientv3.WithKeysOnly())
			var keys []string
			for _, kv := range resp.Kvs {
				keys = append(keys, string(kv.Key))
			}
			snap, _ := c.cli.Get(testenv.Context(t, 5*time.Second), c.keys.Metadata())
			return fmt.Errorf("%d brokers in the metadata; etcd keys %v; snapshot %s", len(m.Brokers), keys, snap.Kvs)
		}
		return nil
	})
	if _, err := adm.CreateTopic(testenv.Context(t, 30*time.Second), 4, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	if co := adm.FindGroupCoordinators(testenv.Context(t, 10*time.Second), group)[group]; co.Err != nil || co.NodeID != 2 {
		t.Fatalf("coordinator of %s: %+v", group, co)
	}

	batchA := c.binProduce(cl, topic, 4, "a", 80)
	m := c.binConsumer("m", group, topic, b1, b2)
	waitAll(t, batchA, m.consumed)
	testenv.Eventually(t, 60*time.Second, func() error {
		if got := sum(c.committedVia(adm, group)[topic]); got != 80 {
			return fmt.Errorf("committed %d of 80", got)
		}
		return nil
	})

	b2.Stop()
	testenv.Eventually(t, 60*time.Second, func() error {
		if co := adm.FindGroupCoordinators(testenv.Context(t, 10*time.Second), group)[group]; co.Err != nil || co.NodeID != 1 {
			return fmt.Errorf("coordinator still %+v", co)
		}
		return nil
	})
	// a fresh client: the first one still has broker 2 cached as the coordinator
	adm = kadm.NewClient(c.binClient(nil, b1))
	if got := c.committedVia(adm, group)[topic]; sum(got) != 80 {
		t.Fatalf("offsets at the new coordinator: %v", got)
	}
	batchB := c.binProduce(cl, topic, 4, "b", 80)
	s := waitAll(t, append(append([]string{}, batchA...), batchB...), m.consumed)
	if len(s.dups) > 0 {
		t.Fatalf("%d records consumed twice after the coordinator moved, e.g. %s", len(s.dups), s.dups[0])
	}
	describeStable(t, adm, group, 1)
}

// TestBinaryExpiresEmptyGroups: with a two-second offsets retention, a group whose offsets
// were committed once (kadm, no members) disappears from etcd, ListGroups and OffsetFetch,
// while a group committing every 200 ms keeps its offsets.
func TestBinaryExpiresEmptyGroups(t *testing.T) {
	c := newCluster(t)
	b := c.startBinary(1, "KAFSCALE_OFFSETS_RETENTION_MS=2000", "KAFSCALE_OFFSETS_RETENTION_CHECK_INTERVAL_MS=200")
	const topic = "expiry-topic"
	cl := c.binClient(nil, b)
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(testenv.Context(t, 30*time.Second), 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	commit := func(group string, at int64) {
		t.Helper()
		var o kadm.Offsets
		o.AddOffset(topic, 0, at, -1)
		resp, err := adm.CommitOffsets(testenv.Context(t, 10*time.Second), group, o)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatalf("commit %s: %v", group, err)
		}
	}
	commit("expiry-old", 5)
	commit("expiry-fresh", 1)
	var fresh int64 = 1
	testenv.Eventually(t, 30*time.Second, func() error {
		fresh++
		commit("expiry-fresh", fresh)
		time.Sleep(200 * time.Millisecond)
		resp, err := c.cli.Get(testenv.Context(t, 10*time.Second), c.keys.Group("expiry-old"))
		if err != nil {
			return err
		}
		if len(resp.Kvs) != 0 {
			return fmt.Errorf("expiry-old still stored")
		}
		return nil
	})
	if got := c.committedVia(adm, "expiry-old")[topic]; len(got) != 0 {
		t.Fatalf("expired group still answers offsets %v", got)
	}
	listed, err := adm.ListGroups(testenv.Context(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := listed["expiry-old"]; ok {
		t.Fatal("ListGroups still lists the expired group")
	}
	if _, ok := listed["expiry-fresh"]; !ok {
		t.Fatalf("ListGroups lost the group still committing: %v", listed.Groups())
	}
	if got := c.committedVia(adm, "expiry-fresh")[topic][0]; got != fresh {
		t.Fatalf("the group still committing has offset %d, want %d", got, fresh)
	}
	if text := b.Metrics(t); !strings.Contains(text, "\nkafscale_groups_expired_total 1\n") {
		t.Fatalf("/metrics does not count the one expired group:\n%s", testenv.GrepLines(text, "kafscale_groups_"))
	}
}

// TestBinaryExpiresOffsetsOfUnsubscribedTopics: a franz-go consumer group member subscribed
// to one topic commits offsets for it and for a topic it does not subscribe to; after the
// retention the broker binary deletes the other topic's offset (etcd, OffsetFetch, /metrics)
// and keeps the subscribed topic's, though it is as old, and the group itself.
func TestBinaryExpiresOffsetsOfUnsubscribedTopics(t *testing.T) {
	c := newCluster(t)
	b := c.startBinary(1, "KAFSCALE_OFFSETS_RETENTION_MS=2000", "KAFSCALE_OFFSETS_RETENTION_CHECK_INTERVAL_MS=200")
	const group, kept, dropped = "unsub-group", "unsub-kept", "unsub-dropped"
	adm := kadm.NewClient(c.binClient(nil, b))
	if _, err := adm.CreateTopics(testenv.Context(t, 30*time.Second), 1, 1, nil, kept, dropped); err != nil {
		t.Fatal(err)
	}
	c.binProduce(c.binClient(nil, b), kept, 1, "rec", 3)
	member := c.binClient([]kgo.Opt{kgo.ConsumerGroup(group), kgo.ConsumeTopics(kept), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, b)
	consumed := 0
	for consumed < 3 { // assigned and consuming: the group is stable
		fs := member.PollFetches(testenv.Context(t, 30*time.Second))
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		consumed += fs.NumRecords()
	}
	committed := make(chan error, 1)
	member.CommitOffsets(testenv.Context(t, 10*time.Second), map[string]map[int32]kgo.EpochOffset{
		kept: {0: {Epoch: -1, Offset: 3}}, dropped: {0: {Epoch: -1, Offset: 9}},
	}, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err == nil {
			for _, rt := range resp.Topics {
				for _, rp := range rt.Partitions {
					err = errors.Join(err, kerr.ErrorForCode(rp.ErrorCode))
				}
			}
		}
		committed <- err
	})
	if err := <-committed; err != nil {
		t.Fatalf("member's commit: %v", err)
	}
	start := time.Now()
	if got := c.committedVia(adm, group); got[kept][0] != 3 || got[dropped][0] != 9 {
		t.Fatalf("committed %v, want %s 3 and %s 9", got, kept, dropped)
	}
	droppedKey := c.keys.Offset(group, dropped, 0)
	testenv.Eventually(t, 30*time.Second, func() error {
		resp, err := c.cli.Get(testenv.Context(t, 10*time.Second), droppedKey)
		if err != nil {
			return err
		}
		if len(resp.Kvs) != 0 {
			return fmt.Errorf("%s still stored", droppedKey)
		}
		return nil
	})
	if age := time.Since(start); age < 2*time.Second {
		t.Fatalf("offset deleted %v after its commit, before the 2 s retention", age)
	}
	got := c.committedVia(adm, group)
	if _, ok := got[dropped][0]; ok {
		t.Fatalf("OffsetFetch still answers the expired offset: %v", got)
	}
	if got[kept][0] != 3 {
		t.Fatalf("the subscribed topic's offset (as old) is %v, want 3", got[kept])
	}
	described, err := adm.DescribeGroups(testenv.Context(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	if st := described[group].State; st != "Stable" {
		t.Fatalf("group is %s, want Stable", st)
	}
	text := b.Metrics(t)
	if !strings.Contains(text, "\nkafscale_group_offsets_expired_total 1\n") || !strings.Contains(text, "\nkafscale_groups_expired_total 0\n") {
		t.Fatalf("/metrics does not count one expired offset and no expired group:\n%s", testenv.GrepLines(text, "expired"))
	}
}
