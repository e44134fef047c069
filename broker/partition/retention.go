package partition

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kafscale/kafscale/broker/object"
	"github.com/kafscale/kafscale/internal/metadata"
)

// retentionLoop enforces retention on the led partitions every RetentionCheckInterval and,
// on the controller broker, sweeps unreferenced objects afterwards.
func (m *Manager) retentionLoop() {
	tick := time.NewTicker(m.opts.RetentionCheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), m.opts.RetentionCheckInterval+m.opts.CommitTimeout)
		if err := m.EnforceRetention(ctx); err != nil {
			m.log.Debug("retention check skipped", "err", err)
		}
		m.mu.Lock()
		controller := m.snap.ControllerID == m.opts.NodeID
		m.mu.Unlock()
		if controller {
			if n, err := m.SweepObjects(ctx); err != nil {
				m.log.Warn("object sweep failed; nothing was deleted after the failure", "deleted", n, "err", err)
			} else if n > 0 {
				m.log.Info("object sweep deleted unreferenced objects", "deleted", n)
			}
		}
		cancel()
	}
}

// EnforceRetention applies retention.ms and retention.bytes to every partition this broker
// leads now, and waits until it is done. It runs in the flusher's goroutine, between
// flushes, so its commits never race a flush's commit of the same partition.
func (m *Manager) EnforceRetention(ctx context.Context) error {
	return m.askFlusher(ctx, m.retentionReq)
}

// topicRetention returns a topic's retention.ms and retention.bytes (-1: unlimited).
func topicRetention(configs map[string]string) (ms, bytes int64) {
	get := func(key string) int64 {
		n, err := strconv.ParseInt(strings.TrimSpace(metadata.TopicConfig(configs, key)), 10, 64)
		if err != nil || n < 0 {
			return -1
		}
		return n
	}
	return get("retention.ms"), get("retention.bytes")
}

// enforceRetention runs in the flusher's goroutine once no flush is in flight.
func (m *Manager) enforceRetention() {
	m.waitFlushesDone()
	m.mu.Lock()
	snap := m.snap
	parts := make([]*partition, 0, len(m.parts))
	for _, p := range m.parts {
		parts = append(parts, p)
	}
	m.mu.Unlock()
	now := time.Now().UnixMilli()
	for _, p := range parts {
		t := snap.Topic(p.tp.topic)
		if t == nil || t.ID != p.topicID {
			continue
		}
		rms, rbytes := topicRetention(t.Configs)
		p.mu.Lock()
		if p.status != leading || p.inflight > 0 {
			p.mu.Unlock()
			continue
		}
		st, rev := p.committed, p.rev
		p.mu.Unlock()
		next, ok := st.ApplyRetention(now, rms, rbytes)
		if !ok {
			continue
		}
		m.commitRetention(p, st, next, rev)
	}
}

// commitRetention writes next through the same fence as a flush: the key's ModRevision
// must still be the one this incarnation last wrote, so a deposed leader moves nothing.
func (m *Manager) commitRetention(p *partition, prev, next *metadata.PartitionState, rev int64) {
	key := m.keys.Partition(p.tp.topic, p.tp.partition)
	value, err := json.Marshal(next)
	if err != nil {
		m.log.Warn("retention: encode state", "partition", p.tp, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.CommitTimeout)
	resp, err := m.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpPut(key, string(value))).Commit()
	cancel()
	m.stats.txns.Add(1)
	if err != nil {
		// The outcome is unknown: re-read the state from etcd before the next commit.
		m.stats.commitErrors.Add(1)
		m.log.Warn("retention commit failed; the partition reloads its state", "partition", p.tp, "err", err)
		m.restart(p, metadata.EtcdError("commit retention "+p.tp.String(), err))
		return
	}
	if !resp.Succeeded {
		m.stats.fenced.Add(1)
		ferr := fmt.Errorf("%s: partition state changed under epoch %d (another leader claimed it): %w", p.tp, p.epoch, kerr.NotLeaderForPartition)
		m.log.Warn("retention commit fenced", "partition", p.tp, "epoch", p.epoch)
		p.retire(ferr, &m.buffered)
		return
	}
	p.mu.Lock()
	if p.rev == rev {
		if p.tip == p.committed {
			p.tip = next
		}
		p.committed, p.rev = next, resp.Header.Revision
	}
	p.mu.Unlock()
	m.stats.commits.Add(1)
	m.stats.retained.Add(1)
	m.log.Info("retention moved the log start", "partition", p.tp, "from", prev.LogStartOffset, "to", next.LogStartOffset)
}

// SweepObjects deletes the flush objects (object.Prefix) that no partition state
// references — directly or through its archived index sections — and that are older than
// Options.SweepGrace (named at least that long ago, by the writer's clock). It reads every
// state first and lists afterwards, so an object old enough to be deleted had its commit
// land (or fail for good) before the states were read. Any failure to read a state or an
// index section stops the sweep before it deletes anything. It returns how many objects it
// deleted.
func (m *Manager) SweepObjects(ctx context.Context) (int, error) {
	start := time.Now()
	resp, err := m.cli.Get(ctx, m.keys.Partitions(), clientv3.WithPrefix())
	if err != nil {
		return 0, metadata.EtcdError("read partition states", err)
	}
	refs := map[string]bool{}
	seen := map[string]bool{} // index sections already walked
	var walk func(r metadata.IndexRef) error
	walk = func(r metadata.IndexRef) error {
		refs[r.Object] = true
		id := chunkKey(r.Object, r.Pos)
		if seen[id] {
			return nil
		}
		seen[id] = true
		sec, err := m.loadSection(ctx, r)
		if err != nil {
			return err
		}
		for _, c := range sec.Chunks {
			refs[c.Object] = true
		}
		for _, sub := range sec.Refs {
			if err := walk(sub); err != nil {
				return err
			}
		}
		return nil
	}
	for _, kv := range resp.Kvs {
		var st metadata.PartitionState
		if err := json.Unmarshal(kv.Value, &st); err != nil {
			return 0, fmt.Errorf("decode partition state %s: %w", kv.Key, err)
		}
		for _, c := range st.Chunks {
			refs[c.Object] = true
		}
		for _, r := range st.Archives {
			if err := walk(r); err != nil {
				return 0, fmt.Errorf("read index section of %s: %w", kv.Key, err)
			}
		}
	}
	objs, err := m.objects.List(ctx, object.Prefix)
	if err != nil {
		return 0, err
	}
	deleted := 0
	for _, o := range objs {
		written, ok := object.ParseName(o.Name)
		if !ok || refs[o.Name] || start.Sub(written) < m.opts.SweepGrace {
			continue
		}
		if err := m.objects.Delete(ctx, o.Name); err != nil {
			return deleted, err
		}
		deleted++
		m.stats.swept.Add(1)
	}
	return deleted, nil
}
