package server

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/kafscale/kafscale/broker/logapi"
	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
)

// memLog is an in-memory Log for handler tests: batches get offsets on Append and are
// durable at once unless a test holds durability back with hold.
type memLog struct {
	mu      sync.Mutex
	parts   map[string][]storedBatch // "topic/partition"
	changed chan struct{}
	hold    chan struct{} // when non-nil, Durable waits for it to close
	appends []string      // "topic/partition@base", in call order
}

type storedBatch struct {
	base, last int64
	maxTS      int64
	bytes      []byte
}

func newMemLog() *memLog {
	return &memLog{parts: map[string][]storedBatch{}, changed: make(chan struct{})}
}

func partKey(topic string, p int32) string { return fmt.Sprintf("%s/%d", topic, p) }

func (l *memLog) Append(_ context.Context, topic string, partition int32, batches []byte, wait bool) (logapi.AppendResult, error) {
	l.mu.Lock()
	key := partKey(topic, partition)
	next := int64(0)
	if bs := l.parts[key]; len(bs) > 0 {
		next = bs[len(bs)-1].last + 1
	}
	res := logapi.AppendResult{BaseOffset: next, LogAppendTime: -1}
	for len(batches) > 0 {
		size := 12 + int(binary.BigEndian.Uint32(batches[8:]))
		b := append([]byte(nil), batches[:size]...)
		binary.BigEndian.PutUint64(b, uint64(next))
		last := next + int64(binary.BigEndian.Uint32(b[23:]))
		l.parts[key] = append(l.parts[key], storedBatch{base: next, last: last, maxTS: int64(binary.BigEndian.Uint64(b[35:])), bytes: b})
		l.appends = append(l.appends, key)
		next = last + 1
		batches = batches[size:]
	}
	close(l.changed)
	l.changed = make(chan struct{})
	hold := l.hold
	l.mu.Unlock()
	res.Durable = func(ctx context.Context) error {
		if hold == nil {
			return nil
		}
		select {
		case <-hold:
			return nil
		case <-ctx.Done():
			return kerr.RequestTimedOut
		}
	}
	if wait {
		return res, res.Durable(context.Background())
	}
	return res, nil
}

func (l *memLog) Read(_ context.Context, topic string, partition int32, offset int64, maxBytes int32) (logapi.ReadResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	bs := l.parts[partKey(topic, partition)]
	hw := int64(0)
	if len(bs) > 0 {
		hw = bs[len(bs)-1].last + 1
	}
	if offset > hw || offset < 0 {
		return logapi.ReadResult{}, kerr.OffsetOutOfRange
	}
	res := logapi.ReadResult{HighWatermark: hw}
	for _, b := range bs {
		if b.last < offset {
			continue
		}
		if len(res.Batches) > 0 && len(res.Batches)+len(b.bytes) > int(maxBytes) {
			break
		}
		res.Batches = append(res.Batches, b.bytes...)
	}
	return res, nil
}

func (l *memLog) Offsets(_ context.Context, topic string, partition int32) (int64, int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	bs := l.parts[partKey(topic, partition)]
	if len(bs) == 0 {
		return 0, 0, nil
	}
	return 0, bs[len(bs)-1].last + 1, nil
}

func (l *memLog) OffsetForTimestamp(_ context.Context, topic string, partition int32, ts int64) (int64, int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range l.parts[partKey(topic, partition)] {
		if b.maxTS >= ts {
			return b.base, b.maxTS, nil
		}
	}
	return -1, -1, nil
}

func (l *memLog) EndOffsetForEpoch(ctx context.Context, topic string, partition int32, epoch int32) (int64, int32, error) {
	_, hw, err := l.Offsets(ctx, topic, partition)
	return hw, 0, err
}

func (l *memLog) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// memCluster is an in-memory Cluster: one snapshot, topics led by leader.
type memCluster struct {
	mu     sync.Mutex
	snap   *metadata.Snapshot
	leader int32

	producerIDs   int64
	producerIDErr error // AllocateProducerID fails with it when set (etcd down)
}

func newMemCluster(host string, port int32) *memCluster {
	return &memCluster{snap: &metadata.Snapshot{
		ClusterID: "test-cluster",
		Brokers:   []metadata.Broker{{NodeID: 0, Host: host, Port: port}},
	}}
}

func (c *memCluster) AllocateProducerID(context.Context) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.producerIDErr != nil {
		return 0, c.producerIDErr
	}
	c.producerIDs++
	return c.producerIDs - 1, nil
}

func (c *memCluster) Snapshot() *metadata.Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.snap
}

func (c *memCluster) CreateTopic(ctx context.Context, name string, partitions int32, configs map[string]string) error {
	leaders := make([]int32, partitions)
	for i := range leaders {
		leaders[i] = c.leader
	}
	return c.CreateTopicAssigned(ctx, name, leaders, configs)
}

func (c *memCluster) CreateTopicAssigned(_ context.Context, name string, leaders []int32, configs map[string]string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snap.Topic(name) != nil {
		return kerr.TopicAlreadyExists
	}
	next := *c.snap
	next.Topics = append([]metadata.Topic(nil), c.snap.Topics...)
	t := metadata.Topic{Name: name, Configs: configs}
	_, _ = rand.Read(t.ID[:])
	for i, leader := range leaders {
		if c.snap.Broker(leader) == nil {
			return fmt.Errorf("broker %d is not live: %w", leader, kerr.InvalidReplicaAssignment)
		}
		t.Partitions = append(t.Partitions, metadata.Partition{ID: int32(i), Leader: leader, LeaderEpoch: 1})
	}
	next.Topics = append(next.Topics, t)
	next.Normalize()
	c.snap = &next
	return nil
}

func (c *memCluster) DeleteTopic(_ context.Context, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := *c.snap
	next.Topics = nil
	found := false
	for _, t := range c.snap.Topics {
		if t.Name == name {
			found = true
			continue
		}
		next.Topics = append(next.Topics, t)
	}
	if !found {
		return kerr.UnknownTopicOrPartition
	}
	c.snap = &next
	return nil
}

// setLeader moves every partition of a topic to another broker, bumping the epoch.
func (c *memCluster) setLeader(topic string, leader int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := *c.snap
	next.Topics = append([]metadata.Topic(nil), c.snap.Topics...)
	for i := range next.Topics {
		if next.Topics[i].Name != topic {
			continue
		}
		ps := append([]metadata.Partition(nil), next.Topics[i].Partitions...)
		for j := range ps {
			ps[j].Leader = leader
			ps[j].LeaderEpoch++
		}
		next.Topics[i].Partitions = ps
	}
	c.snap = &next
}
