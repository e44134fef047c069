package groups

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafscale/kafscale/internal/metadata"
)

// fakeClock runs timers only when a test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	at      time.Time
	f       func()
	stopped bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

// Advance moves time forward by d, running due timers in deadline order (in this goroutine).
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		sort.SliceStable(c.timers, func(i, j int) bool { return c.timers[i].at.Before(c.timers[j].at) })
		var due *fakeTimer
		for i, t := range c.timers {
			if t.stopped {
				continue
			}
			if !t.at.After(end) {
				due = t
				c.timers = append(c.timers[:i:i], c.timers[i+1:]...)
			}
			break
		}
		if due == nil {
			c.now = end
			c.mu.Unlock()
			return
		}
		due.stopped = true
		if due.at.After(c.now) {
			c.now = due.at
		}
		c.mu.Unlock()
		due.f()
	}
}

// memKV is an in-memory etcd with revisions; fail makes every call fail (an outage).
type memKV struct {
	mu   sync.Mutex
	txns int
	rev  int64
	data map[string]pair
	fail bool
}

func newMemKV() *memKV { return &memKV{data: map[string]pair{}} }

var errOutage = errors.New("etcd unreachable (test outage)")

func (m *memKV) setFail(v bool) {
	m.mu.Lock()
	m.fail = v
	m.mu.Unlock()
}

func (m *memKV) get(_ context.Context, key string, prefix, keysOnly bool) ([]pair, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return nil, errOutage
	}
	var out []pair
	for k, p := range m.data {
		if k == key || prefix && strings.HasPrefix(k, key) {
			if keysOnly {
				p.value = ""
			}
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out, nil
}

func (m *memKV) txn(_ context.Context, fenceKey string, fenceRev int64, ops []op) (bool, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return false, 0, errOutage
	}
	m.txns++
	if m.data[fenceKey].modRev != fenceRev {
		return false, m.rev, nil
	}
	m.rev++
	for _, o := range ops {
		if o.value == nil {
			delete(m.data, o.key)
		} else {
			m.data[o.key] = pair{key: o.key, value: *o.value, modRev: m.rev}
		}
	}
	return true, m.rev, nil
}

func (m *memKV) value(key string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.data[key]
	return p.value, ok
}

// harness is one coordinator (or several sharing a memKV) over a settable snapshot.
type harness struct {
	t     *testing.T
	clock *fakeClock
	kv    *memKV
	keys  metadata.Keys
	mu    sync.Mutex
	snap  *metadata.Snapshot
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, clock: newFakeClock(), kv: newMemKV(), keys: metadata.Keys{Namespace: "ns", Cluster: "c"}}
	h.setBrokers(1)
	return h
}

func (h *harness) setBrokers(ids ...int32) {
	snap := &metadata.Snapshot{ClusterID: "c", ControllerID: -1}
	for _, id := range ids {
		snap.Brokers = append(snap.Brokers, metadata.Broker{NodeID: id, Host: "127.0.0.1", Port: 9000 + id})
	}
	big := metadata.Topic{Name: "big"}
	for i := range int32(250) {
		big.Partitions = append(big.Partitions, metadata.Partition{ID: i, Leader: ids[0]})
	}
	snap.Topics = []metadata.Topic{
		{Name: "t1", Partitions: []metadata.Partition{{ID: 0, Leader: ids[0]}, {ID: 1, Leader: ids[0]}}},
		{Name: "t2", Partitions: []metadata.Partition{{ID: 0, Leader: ids[0]}}},
		big,
	}
	snap.Normalize()
	h.mu.Lock()
	h.snap = snap
	h.mu.Unlock()
}

func (h *harness) snapshot() *metadata.Snapshot {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.snap
}

func (h *harness) coordinator(node int32, mod func(*Options)) *Coordinator {
	opts := testOptions(node)
	opts.Clock = h.clock
	if mod != nil {
		mod(&opts)
	}
	c, err := newCoordinator(h.kv, h.keys, h.snapshot, opts)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(c.Close)
	return c
}

// testOptions are the broker's defaults without the initial rebalance delay, which tests
// that need it set themselves.
func testOptions(node int32) Options {
	return Options{
		NodeID: node, RequestTimeout: 5 * time.Second,
		MinSessionTimeout: 6 * time.Second, MaxSessionTimeout: 30 * time.Minute,
		OffsetsRetention: 7 * 24 * time.Hour, OffsetsRetentionCheckInterval: 10 * time.Minute,
		MaxMetadataBytes: 4096,
	}
}

// waitFor polls until cond holds; the long deadline only bounds a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// groupState reads a loaded group's state, generation and the number of members waiting
// in JoinGroup and SyncGroup.
func groupState(c *Coordinator, id string) (state State, generation int32, joining, syncing int) {
	c.mu.Lock()
	g := c.groups[id]
	c.mu.Unlock()
	if g == nil {
		return Dead, -1, 0, 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, m := range g.members {
		if m.joinWait != nil {
			joining++
		}
		if m.syncWait != nil {
			syncing++
		}
	}
	return g.state, g.generation, joining, syncing
}

func consumerMeta(topics ...string) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Topics = topics
	return m.AppendTo(nil)
}

func joinReq(version int16, group, member string, protocols ...string) *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version = version
	r.Group, r.MemberID, r.ProtocolType = group, member, "consumer"
	r.SessionTimeoutMillis, r.RebalanceTimeoutMillis = 10_000, 30_000
	if len(protocols) == 0 {
		protocols = []string{"range"}
	}
	for _, p := range protocols {
		jp := kmsg.NewJoinGroupRequestProtocol()
		jp.Name, jp.Metadata = p, consumerMeta("t1")
		r.Protocols = append(r.Protocols, jp)
	}
	return r
}

// join runs a JoinGroup in the background.
func join(c *Coordinator, req *kmsg.JoinGroupRequest) <-chan *kmsg.JoinGroupResponse {
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { ch <- c.JoinGroup(context.Background(), "client", "/127.0.0.1", req) }()
	return ch
}

// joinNew joins with v5 (MEMBER_ID_REQUIRED first) and returns the rejoin's channel.
func joinNew(t *testing.T, c *Coordinator, group string) (string, <-chan *kmsg.JoinGroupResponse) {
	t.Helper()
	first := c.JoinGroup(context.Background(), "client", "/127.0.0.1", joinReq(5, group, ""))
	if first.ErrorCode != kerr.MemberIDRequired.Code {
		t.Fatalf("first join: error %d, want MEMBER_ID_REQUIRED", first.ErrorCode)
	}
	if first.MemberID == "" {
		t.Fatal("MEMBER_ID_REQUIRED without a member id")
	}
	return first.MemberID, join(c, joinReq(5, group, first.MemberID))
}

func syncReq(group, member string, gen int32, assign map[string]string) *kmsg.SyncGroupRequest {
	r := kmsg.NewPtrSyncGroupRequest()
	r.Version = 5
	r.Group, r.MemberID, r.Generation = group, member, gen
	r.ProtocolType, r.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	for id, a := range assign {
		ga := kmsg.NewSyncGroupRequestGroupAssignment()
		ga.MemberID, ga.MemberAssignment = id, []byte(a)
		r.GroupAssignment = append(r.GroupAssignment, ga)
	}
	return r
}

func syncAsync(c *Coordinator, req *kmsg.SyncGroupRequest) <-chan *kmsg.SyncGroupResponse {
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	go func() { ch <- c.SyncGroup(context.Background(), req) }()
	return ch
}

func heartbeat(c *Coordinator, group, member string, gen int32) int16 {
	r := kmsg.NewPtrHeartbeatRequest()
	r.Version = 4
	r.Group, r.MemberID, r.Generation = group, member, gen
	return c.Heartbeat(context.Background(), r).ErrorCode
}

func commitReq(version int16, group, member string, gen int32, offsets map[string]map[int32]int64) *kmsg.OffsetCommitRequest {
	r := kmsg.NewPtrOffsetCommitRequest()
	r.Version = version
	r.Group, r.MemberID, r.Generation = group, member, gen
	topics := make([]string, 0, len(offsets))
	for t := range offsets {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = t
		for p, o := range offsets[t] {
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = p, o, 3, kmsg.StringPtr("m")
			rt.Partitions = append(rt.Partitions, rp)
		}
		r.Topics = append(r.Topics, rt)
	}
	return r
}

// commitCodes returns the error codes of a commit by topic and partition.
func commitCodes(resp *kmsg.OffsetCommitResponse) map[string]map[int32]int16 {
	out := map[string]map[int32]int16{}
	for _, t := range resp.Topics {
		out[t.Topic] = map[int32]int16{}
		for _, p := range t.Partitions {
			out[t.Topic][p.Partition] = p.ErrorCode
		}
	}
	return out
}

// fetched returns group offsets from an OffsetFetch v7 (null topics: all).
func fetched(t *testing.T, c *Coordinator, group string) map[string]map[int32]int64 {
	t.Helper()
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version = 7
	r.Group = group
	resp := c.OffsetFetch(context.Background(), r)
	if resp.ErrorCode != 0 {
		t.Fatalf("offset fetch %s: error %d", group, resp.ErrorCode)
	}
	out := map[string]map[int32]int64{}
	for _, rt := range resp.Topics {
		out[rt.Topic] = map[int32]int64{}
		for _, p := range rt.Partitions {
			out[rt.Topic][p.Partition] = p.Offset
		}
	}
	return out
}
