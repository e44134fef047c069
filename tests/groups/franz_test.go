package groups_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kafscale/kafscale/tests/testenv"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// franzConsumer is a kgo group member that commits what it polled before allowing the
// next rebalance, so a partition moving to another member is resumed exactly where it was.
type franzConsumer struct {
	t      *testing.T
	name   string
	cl     *kgo.Client
	mu     sync.Mutex
	values []string
	done   chan struct{}
	cancel context.CancelFunc
}

func (c *cluster) franzConsumer(b *broker, name, group, topic string, extra ...kgo.Opt) *franzConsumer {
	return c.franzConsumerSeeds([]string{b.addr()}, name, group, topic, extra...)
}

func (c *cluster) franzConsumerSeeds(seeds []string, name, group, topic string, extra ...kgo.Opt) *franzConsumer {
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(seeds...), kgo.RetryTimeout(60 * time.Second),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.SessionTimeout(10 * time.Second), kgo.HeartbeatInterval(500 * time.Millisecond),
		kgo.ClientID(name),
	}, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		c.t.Fatal(err)
	}
	fc := &franzConsumer{t: c.t, name: name, cl: cl, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	fc.cancel = cancel
	go func() {
		defer close(fc.done)
		for ctx.Err() == nil {
			fs := fc.cl.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) {
				fc.mu.Lock()
				fc.values = append(fc.values, string(r.Value))
				fc.mu.Unlock()
			})
			fc.commit()
			fc.cl.AllowRebalance()
		}
	}()
	c.t.Cleanup(fc.close)
	return fc
}

func (fc *franzConsumer) consumed() []string {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return append([]string(nil), fc.values...)
}

// commit commits what was polled; it is not cut short by close, so every record the
// consumer counted is committed before it leaves.
func (fc *franzConsumer) commit() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := fc.cl.CommitUncommittedOffsets(ctx); err != nil {
		fc.t.Logf("%s: commit: %v", fc.name, err)
	}
}

// close stops polling, commits what was polled and leaves the group.
func (fc *franzConsumer) close() {
	if fc.cancel == nil {
		return
	}
	fc.cancel()
	<-fc.done
	fc.commit()
	fc.cl.AllowRebalance()
	fc.cl.Close()
	fc.cancel = nil
}

// waitAll waits until the consumers together consumed want (and no more than that many).
func waitAll(t *testing.T, want []string, consumers ...func() []string) *seen {
	t.Helper()
	var s *seen
	testenv.Eventually(t, 90*time.Second, func() error {
		s = newSeen()
		for i, c := range consumers {
			for _, v := range c() {
				s.add(fmt.Sprint(i), v)
			}
		}
		if m := s.missing(want); len(m) > 0 {
			return fmt.Errorf("%d of %d records not consumed yet (e.g. %s)", len(m), len(want), m[0])
		}
		return nil
	})
	return s
}

// describeStable waits until the group is Stable with n members that all have partitions.
func describeStable(t *testing.T, adm *kadm.Client, group string, n int) kadm.DescribedGroup {
	t.Helper()
	var out kadm.DescribedGroup
	testenv.Eventually(t, 60*time.Second, func() error {
		d, err := adm.DescribeGroups(testenv.Context(t, 10*time.Second), group)
		if err != nil {
			return err
		}
		g := d[group]
		if g.Err != nil {
			return g.Err
		}
		if g.State != "Stable" || len(g.Members) != n {
			return fmt.Errorf("group %s is %s with %d members, want Stable with %d", group, g.State, len(g.Members), n)
		}
		for _, m := range g.Members {
			a, ok := m.Assigned.AsConsumer()
			if !ok || len(a.Topics) == 0 || len(a.Topics[0].Partitions) == 0 {
				return fmt.Errorf("member %s has no partitions yet", m.MemberID)
			}
		}
		out = g
		return nil
	})
	return out
}

func TestFranzGoGroupRebalanceAndRestart(t *testing.T) {
	c := newCluster(t)
	b := c.startBroker(1, 0)
	const topic, group = "events", "franz-group"
	c.createTopic(b, topic, 4)
	batchA := c.produce(b, topic, 4, "a", 200)

	c1 := c.franzConsumer(b, "c1", group, topic)
	waitAll(t, batchA, c1.consumed)

	c2 := c.franzConsumer(b, "c2", group, topic)
	cl := c.client(b, nil)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	described := describeStable(t, adm, group, 2)
	if described.Protocol == "" || described.ProtocolType != "consumer" {
		t.Fatalf("described protocol %q type %q", described.Protocol, described.ProtocolType)
	}

	batchB := c.produce(b, topic, 4, "b", 200)
	s := waitAll(t, append(append([]string{}, batchA...), batchB...), c1.consumed, c2.consumed)
	if len(s.dups) > 0 {
		t.Fatalf("%d records consumed twice, e.g. %s", len(s.dups), s.dups[0])
	}
	perMember := map[string]int{}
	for _, v := range batchB {
		perMember[s.byValue[v]]++
	}
	if perMember["0"] == 0 || perMember["1"] == 0 {
		t.Fatalf("after the rebalance the second batch went to one member only: %v", perMember)
	}
	t.Logf("batch b split between the members: %v", perMember)
	c1.close()
	c2.close()

	testenv.Eventually(t, 30*time.Second, func() error {
		if got := sum(c.committed(b, group)[topic]); got != 400 {
			return fmt.Errorf("committed %d of 400", got)
		}
		return nil
	})

	// a broker restart (new process state, same etcd and S3) keeps the committed offsets
	port := b.port
	b.stop()
	b = c.startBroker(1, port)
	committed := c.committed(b, group)[topic]
	for p := int32(0); p < 4; p++ {
		if committed[p] != 100 {
			t.Fatalf("after restart partition %d committed at %d, want 100 (%v)", p, committed[p], committed)
		}
	}
	batchC := c.produce(b, topic, 4, "c", 40)
	c3 := c.franzConsumer(b, "c3", group, topic)
	waitAll(t, batchC, c3.consumed)
	time.Sleep(time.Second) // a resumed consumer that went back to the start would show by now
	for _, v := range c3.consumed() {
		if v[0] != 'c' {
			t.Fatalf("after restart the group re-consumed %s: committed offsets were not used", v)
		}
	}
}

func TestKadmListDescribeDeleteGroups(t *testing.T) {
	c := newCluster(t)
	b := c.startBroker(1, 0)
	const topic = "admin-topic"
	c.createTopic(b, topic, 2)
	values := c.produce(b, topic, 2, "r", 20)

	live := c.franzConsumer(b, "live-1", "live", topic)
	waitAll(t, values, live.consumed)

	cl := c.client(b, nil)
	defer cl.Close()
	adm := kadm.NewClient(cl)

	// a groupless commit (generation -1) creates an empty group
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: 7, LeaderEpoch: -1})
	offs.Add(kadm.Offset{Topic: topic, Partition: 1, At: 3, LeaderEpoch: -1})
	cr, err := adm.CommitOffsets(testenv.Context(t, 20*time.Second), "offline", offs)
	if err != nil || cr.Error() != nil {
		t.Fatalf("commit: %v / %v", err, cr.Error())
	}
	if got := c.committed(b, "offline")[topic]; got[0] != 7 || got[1] != 3 {
		t.Fatalf("committed %v", got)
	}

	describeStable(t, adm, "live", 1)
	listed, err := adm.ListGroups(testenv.Context(t, 20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, g := range listed.Sorted() {
		states[g.Group] = g.State
	}
	if states["live"] != "Stable" || states["offline"] != "Empty" {
		t.Fatalf("listed %v", states)
	}

	del, err := adm.DeleteGroups(testenv.Context(t, 20*time.Second), "live", "offline", "never-existed")
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(del["live"].Err, kerr.NonEmptyGroup) || del["offline"].Err != nil || !errors.Is(del["never-existed"].Err, kerr.GroupIDNotFound) {
		t.Fatalf("delete: live %v, offline %v, never-existed %v", del["live"].Err, del["offline"].Err, del["never-existed"].Err)
	}
	if got := c.committed(b, "offline"); len(got) != 0 {
		t.Fatalf("offsets of a deleted group: %v", got)
	}

	// offsets of a topic the live group does not consume can go; of its own topic not
	ds, err := adm.DeleteOffsets(testenv.Context(t, 20*time.Second), "live", kadm.TopicsSet{topic: {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(ds[topic][0], kerr.GroupSubscribedToTopic) {
		t.Fatalf("offset delete of a subscribed topic: %v", ds[topic][0])
	}

	live.close()
	testenv.Eventually(t, 30*time.Second, func() error {
		del, err := adm.DeleteGroups(testenv.Context(t, 20*time.Second), "live")
		if err != nil {
			return err
		}
		return del["live"].Err
	})
	listed, err = adm.ListGroups(testenv.Context(t, 20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 0 {
		t.Fatalf("groups left after deleting them all: %v", listed.Groups())
	}
	d, err := adm.DescribeGroups(testenv.Context(t, 20*time.Second), "live")
	if err != nil {
		t.Fatal(err)
	}
	if d["live"].State != "Dead" {
		t.Fatalf("deleted group described as %s", d["live"].State)
	}
}

// TestFranzGoStaticMemberRestart: a static member (group.instance.id) that restarts gets its
// partitions back at once — same generation, no rebalance — and resumes after its commits.
func TestFranzGoStaticMemberRestart(t *testing.T) {
	c := newCluster(t)
	b := c.startBroker(1, 0)
	const topic, group = "static-topic", "static-group"
	c.createTopic(b, topic, 2)
	batchA := c.produce(b, topic, 2, "a", 40)
	m := c.franzConsumer(b, "s1", group, topic, kgo.InstanceID("instance-1"))
	waitAll(t, batchA, m.consumed)
	testenv.Eventually(t, 30*time.Second, func() error {
		if got := sum(c.committed(b, group)[topic]); got != 40 {
			return fmt.Errorf("committed %d of 40", got)
		}
		return nil
	})
	before := c.storedGroup(group)
	m.close() // a static member does not leave the group on close

	batchB := c.produce(b, topic, 2, "b", 40)
	m2 := c.franzConsumer(b, "s1-restarted", group, topic, kgo.InstanceID("instance-1"))
	waitAll(t, batchB, m2.consumed)
	for _, v := range m2.consumed() {
		if v[0] != 'b' {
			t.Fatalf("the restarted static member re-consumed %s", v)
		}
	}
	after := c.storedGroup(group)
	if after.Generation != before.Generation || len(after.Members) != 1 || after.Members[0].MemberID == before.Members[0].MemberID {
		t.Fatalf("static restart: generation %d → %d, member %s → %v", before.Generation, after.Generation, before.Members[0].MemberID, after.Members)
	}
	t.Logf("generation %d kept; member id %s replaced by %s", after.Generation, before.Members[0].MemberID, after.Members[0].MemberID)
}
