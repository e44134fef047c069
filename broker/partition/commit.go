package partition

// The commit: partition states written to etcd in fenced transactions, appends settled.

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kafscale/kafscale/internal/metadata"
)

// finishFlushes commits uploaded flushes, in order, or fails the appends of those whose
// upload failed. A partition with cuts in several of them commits once, its last cut's
// state (which builds on the others'), fenced on what the first built on.
func (m *Manager) finishFlushes(jobs []*flushJob) {
	var ready []*cut              // the cut to write per partition, in order
	last := map[*partition]*cut{} // the partition's cut in ready
	latest := time.Time{}         // the earliest deadline of the jobs committing
	// A cut that fails is settled after the commit, as if the flushes had committed one by
	// one: its failure rewinds the partition to what committed, which includes the cuts
	// before it. The partition's later cuts in the batch fail with it (their offsets follow
	// its data).
	type failure struct {
		c   *cut
		err error
	}
	var failed []failure
	broken := map[*partition]error{}
	fail := func(c *cut, err error) {
		failed = append(failed, failure{c, err})
		if _, ok := broken[c.p]; !ok {
			broken[c.p] = err
		}
	}
	for _, job := range jobs {
		name, cuts := job.name, job.cuts
		m.cache.Release(job.reserved)
		if job.putTime > 0 && m.opts.ObserveUpload != nil {
			m.opts.ObserveUpload(job.putTime)
		}
		if job.err != nil {
			m.stats.flushErrors.Add(1)
			m.log.Warn("flush failed", "object", name, "partitions", len(cuts), "err", job.err)
			ferr := fmt.Errorf("flush to S3: %w (%w)", kerr.KafkaStorageError, job.err)
			for _, c := range cuts {
				fail(c, ferr)
			}
			continue
		}
		m.stats.flushes.Add(1)
		m.stats.flushBytes.Add(job.size)
		// The bytes are likely read soon by tail consumers: cache them now, keyed as reads
		// look them up. The key is unique, so caching data whose commit then fails is
		// harmless.
		for _, c := range cuts {
			ch := c.next.Chunks[len(c.next.Chunks)-1]
			data := c.data
			if spare := cap(data) - len(data); spare > len(data)/2 {
				// The cache counts capacity: a buffer with much spare room (doubled for a
				// stream that sped up) would take up to twice its data's room, so it is
				// copied. The up-to-a-quarter the buffer sizing leaves is kept as it is:
				// copying every cut would cost a second pass over every produced byte.
				data = bytes.Clone(data)
			}
			m.cache.Put(chunkKey(ch.Object, ch.Pos), data)
		}
		// A commit must land within 2 × the PUT bound + CommitTimeout of naming the object
		// (the sweeper's grace relies on it), however long the flush waited for those ahead.
		deadline := job.named.Add(2*m.objectsTimeout() + m.opts.CommitTimeout)
		if !time.Now().Before(deadline) {
			late := fmt.Errorf("flush %s waited too long for the flushes ahead of it: %w", name, kerr.KafkaStorageError)
			m.stats.flushErrors.Add(1)
			m.log.Warn("flush failed", "object", name, "partitions", len(cuts), "err", late)
			for _, c := range cuts {
				fail(c, late)
			}
			continue
		}
		// A cut whose predecessor failed is not committed: its offsets follow data that was
		// never committed. One whose predecessor is in this batch takes its place.
		committing := false
		for _, c := range cuts {
			if err, ok := broken[c.p]; ok {
				fail(c, err)
				continue
			}
			if prior := last[c.p]; prior != nil {
				if c.gen != prior.gen || c.prev != prior.next {
					fail(c, fmt.Errorf("%s: an earlier flush failed: %w", c.p.tp, kerr.KafkaStorageError))
					continue
				}
				c.merged = append(append(prior.merged, prior), c.merged...)
				prior.merged = nil
				c.prevRev = prior.prevRev
				last[c.p] = c
				committing = true
				continue
			}
			rev, err := c.p.readyToCommit(c)
			if err != nil {
				fail(c, err)
				continue
			}
			c.prevRev = rev
			last[c.p] = c
			committing = true
		}
		if committing && (latest.IsZero() || deadline.Before(latest)) {
			latest = deadline
		}
	}
	for _, job := range jobs {
		for _, c := range job.cuts {
			if last[c.p] == c {
				ready = append(ready, c)
			}
		}
	}
	start := time.Now()
	committed := m.commit(ready, latest)
	if len(ready) > 0 && m.opts.ObserveCommit != nil {
		m.opts.ObserveCommit(time.Since(start))
	}
	for _, f := range failed {
		m.settleOne(f.c, nil, 0, f.err, outcomeRefused)
	}
	if committed > 0 {
		m.notifyChanged()
	}
	// Delete an object only when every partition in it was refused for certain: after an
	// etcd error a commit may have landed, and then the object holds committed data.
	for _, job := range jobs {
		if job.err != nil || slices.ContainsFunc(job.cuts, func(c *cut) bool { return c.outcome != outcomeRefused }) {
			continue
		}
		m.stats.garbage.Add(1)
		go func(name string) {
			ctx, cancel := context.WithTimeout(context.Background(), m.objectsTimeout())
			defer cancel()
			if err := m.objects.Delete(ctx, name); err != nil {
				m.log.Info("could not delete uncommitted object; it is unreferenced garbage", "object", name, "err", err)
			}
		}(job.name)
	}
}

// settleChain settles the cuts c commits for (c.merged, oldest first) and then c, all with
// the same outcome.
func (m *Manager) settleChain(c *cut, next *metadata.PartitionState, rev int64, err error, o outcome) {
	for _, e := range c.merged {
		m.settleOne(e, e.next, rev, err, o)
	}
	m.settleOne(c, next, rev, err, o)
}

// settleOne records what became of c's commit and settles its appends.
func (m *Manager) settleOne(c *cut, next *metadata.PartitionState, rev int64, err error, o outcome) {
	c.outcome = o
	c.p.settle(c, next, rev, err, &m.buffered)
}

// objectsTimeout bounds one S3 request of the data path (KAFSCALE_S3_REQUEST_TIMEOUT_MS).
func (m *Manager) objectsTimeout() time.Duration { return m.opts.S3RequestTimeout }

// commit writes every cut's next state in as few etcd transactions as the limits allow,
// each fenced by the ModRevisions this broker last wrote, retrying until CommitTimeout or
// latest, whichever comes first. It settles every cut (and the cuts merged into it), sets
// their outcomes and returns how many cuts committed.
func (m *Manager) commit(cuts []*cut, latest time.Time) (committed int) {
	deadline := time.Now().Add(m.opts.CommitTimeout)
	if latest.Before(deadline) {
		deadline = latest
	}
	pending := cuts
	for len(pending) > 0 {
		// Take a group that fits one transaction.
		n, size := 0, 0
		for n < len(pending) && n < m.opts.MaxTxnOps && (n == 0 || size+len(pending[n].value) <= m.opts.MaxTxnBytes) {
			size += len(pending[n].value)
			n++
		}
		group := pending[:n]
		pending = pending[n:]
		committed += m.commitGroup(group, deadline)
	}
	return committed
}

// commitGroup commits one group: a transaction comparing every key's ModRevision and, when
// some compare fails, finding out from the Else reads which partitions were fenced (or were
// in fact already committed by an earlier attempt whose answer was lost) and retrying the
// rest. etcd errors are retried until the deadline; after that the outcome is unknown and
// the partitions restart from etcd. It returns how many cuts committed, merged ones included.
func (m *Manager) commitGroup(group []*cut, deadline time.Time) (committed int) {
	backoff := 50 * time.Millisecond
	for len(group) > 0 {
		keys := make([]string, len(group))
		cmps := make([]clientv3.Cmp, len(group))
		puts := make([]clientv3.Op, len(group))
		gets := make([]clientv3.Op, len(group))
		for i, c := range group {
			keys[i] = m.keys.Partition(c.p.tp.topic, c.p.tp.partition)
			cmps[i] = clientv3.Compare(clientv3.ModRevision(keys[i]), "=", c.prevRev)
			puts[i] = clientv3.OpPut(keys[i], c.value)
			gets[i] = clientv3.OpGet(keys[i])
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		resp, err := m.cli.Txn(ctx).If(cmps...).Then(puts...).Else(gets...).Commit()
		cancel()
		m.stats.txns.Add(1)
		if err != nil {
			if time.Now().Add(backoff).Before(deadline) {
				time.Sleep(backoff)
				backoff = min(2*backoff, time.Second)
				continue
			}
			m.stats.commitErrors.Add(1)
			m.log.Warn("commit failed; partitions reload their state", "partitions", len(group), "err", err)
			cerr := metadata.EtcdError("commit partition state", err)
			for _, c := range group {
				m.settleChain(c, nil, 0, cerr, outcomeUncertain)
				m.restart(c.p, cerr)
			}
			return committed
		}
		if resp.Succeeded {
			for _, c := range group {
				m.stats.commitBytes.Add(int64(len(c.value)))
				m.stats.commits.Add(int64(1 + len(c.merged)))
				committed += 1 + len(c.merged)
				m.settleChain(c, c.next, resp.Header.Revision, nil, outcomeCommitted)
			}
			return committed
		}
		var retry []*cut
		for i, c := range group {
			kvs := resp.Responses[i].GetResponseRange().GetKvs()
			switch {
			case len(kvs) == 1 && kvs[0].ModRevision == c.prevRev:
				retry = append(retry, c) // not the one that failed the compare
			case len(kvs) == 1 && string(kvs[0].Value) == c.value:
				// An earlier attempt committed it; its answer was lost.
				m.stats.commitBytes.Add(int64(len(c.value)))
				m.stats.commits.Add(int64(1 + len(c.merged)))
				committed += 1 + len(c.merged)
				m.settleChain(c, c.next, kvs[0].ModRevision, nil, outcomeCommitted)
			default:
				m.stats.fenced.Add(1)
				ferr := fmt.Errorf("%s: partition state changed under epoch %d (another leader claimed it): %w", c.p.tp, c.p.epoch, kerr.NotLeaderForPartition)
				m.log.Warn("commit fenced", "partition", c.p.tp, "epoch", c.p.epoch)
				m.settleChain(c, nil, 0, ferr, outcomeRefused)
				c.p.retire(ferr, &m.buffered)
			}
		}
		group = retry
	}
	return committed
}

func chunkKey(object string, pos int64) string { return fmt.Sprintf("%s#%d", object, pos) }
