package groups

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"
)

// expireLoop runs ExpireGroups every OffsetsRetentionCheckInterval until the coordinator
// closes.
func (c *Coordinator) expireLoop() {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return
	}
	// Each group costs a few etcd requests: allow them all a generous bound, one sweep at
	// a time (the next is scheduled when this one ends).
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.OffsetsRetentionCheckInterval+10*c.opts.RequestTimeout)
	n, err := c.ExpireGroups(ctx)
	cancel()
	switch {
	case err != nil:
		c.log.Warn("expiring groups and offsets", "groups expired", n, "err", err)
	case n > 0:
		c.log.Info("expired empty groups", "groups", n, "retention", c.opts.OffsetsRetention)
	}
	c.mu.Lock()
	if !c.closed {
		c.expiry = c.opts.Clock.AfterFunc(c.opts.OffsetsRetentionCheckInterval, c.expireLoop)
	}
	c.mu.Unlock()
}

// ExpireGroups deletes what the groups this broker coordinates no longer need, as Kafka
// does after offsets.retention.minutes (KIP-211, KIP-496), so etcd does not keep every
// consumer group that ever ran:
//   - a group empty, with no offset committed, for OffsetsRetention goes with its document
//     and every committed offset. It counts as empty from the document written when its last
//     member left; a group only committing offsets (clients that assign partitions
//     themselves) stays while it commits. A stored group still naming members from long ago
//     is loaded, so their sessions run out and it becomes empty;
//   - a stable consumer group (protocol type "consumer") keeps the offsets of the topics its
//     members subscribe to; those of other topics go once they were committed
//     OffsetsRetention ago (a group that stopped consuming a topic).
//
// It returns how many groups it deleted.
func (c *Coordinator) ExpireGroups(ctx context.Context) (int, error) {
	docs, err := c.listStoredGroups(ctx)
	if err != nil {
		return 0, err
	}
	ids := make([]string, 0, len(docs))
	for id := range docs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	now := c.opts.Clock.Now()
	expired := 0
	var errs []error
	for _, id := range ids {
		doc := docs[id]
		if !c.isCoordinator(id) {
			continue
		}
		stale := now.Sub(time.UnixMilli(doc.UpdatedMs)) >= c.opts.OffsetsRetention
		switch {
		case doc.State == "Empty":
			if !stale {
				continue
			}
			ok, err := c.expireGroup(ctx, id, now)
			if err != nil {
				errs = append(errs, err)
			}
			if ok {
				expired++
			}
		case doc.ProtocolType == "consumer" || stale:
			// Loading a stored group starts its members' sessions: a stale one empties and a
			// later sweep expires it.
			if err := c.expireUnsubscribedOffsets(ctx, id, now); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return expired, errors.Join(errs...)
}

// expireUnsubscribedOffsets deletes, with the group's lock held, the offsets a stable
// consumer group committed OffsetsRetention ago or earlier for topics none of its members
// subscribes to. A group whose members' subscriptions cannot all be read keeps every offset.
func (c *Coordinator) expireUnsubscribedOffsets(ctx context.Context, id string, now time.Time) error {
	g, err := c.lockGroup(ctx, id, false)
	if errors.Is(err, errNotCoordinator) {
		return nil
	}
	if err != nil || g == nil {
		return err
	}
	defer g.mu.Unlock()
	if g.state != Stable || g.protocolType != "consumer" || g.rev == 0 {
		return nil
	}
	subscribed, ok := g.subscribedTopics()
	if !ok {
		return nil
	}
	offsets, err := c.readOffsets(ctx, g.id)
	if err != nil {
		return err
	}
	var old []topicPartition
	for tp, o := range offsets {
		if !subscribed[tp.topic] && now.Sub(time.UnixMilli(o.CommitMs)) >= c.opts.OffsetsRetention {
			old = append(old, tp)
		}
	}
	if len(old) == 0 {
		return nil
	}
	slices.SortFunc(old, func(a, b topicPartition) int {
		return cmp.Or(strings.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition))
	})
	ops := make([]op, len(old))
	for i, tp := range old {
		ops[i] = deleteOp(c.keys.Offset(g.id, tp.topic, tp.partition))
	}
	if err := c.writeOps(ctx, g, false, ops); err != nil {
		if errors.Is(err, errFenced) {
			c.drop(g)
			return nil
		}
		return err
	}
	c.log.Info("offsets expired: topics the consumer group no longer subscribes to, not committed within the retention",
		"group", id, "partitions", len(old), "first", old[0].topic, "retention", c.opts.OffsetsRetention)
	c.offsetsExpired.Add(int64(len(old)))
	return nil
}

// expireGroup deletes the group when, with its lock held, it is empty, its document is the
// one this broker last saw, and neither that document nor any of its offsets was written
// within OffsetsRetention.
func (c *Coordinator) expireGroup(ctx context.Context, id string, now time.Time) (bool, error) {
	g, err := c.lockGroup(ctx, id, false)
	if errors.Is(err, errNotCoordinator) {
		return false, nil
	}
	if err != nil || g == nil {
		return false, err
	}
	defer g.mu.Unlock()
	if g.state != Empty || len(g.members) > 0 || len(g.pending) > 0 || g.rev == 0 {
		return false, nil
	}
	newest, err := c.lastWritten(ctx, g)
	if err != nil || newest.IsZero() || now.Sub(newest) < c.opts.OffsetsRetention {
		return false, err
	}
	if err := c.deleteGroup(ctx, g); err != nil {
		if errors.Is(err, errFenced) {
			c.drop(g)
			return false, nil
		}
		return false, err
	}
	c.log.Info("group expired: empty, no offset committed within the retention", "group", id, "retention", c.opts.OffsetsRetention)
	c.drop(g)
	c.expired.Add(1)
	return true, nil
}

// lastWritten is the latest of the group document's and its offsets' write times, or zero
// when the stored document is not the one g was read or written as (g.mu held).
func (c *Coordinator) lastWritten(ctx context.Context, g *group) (time.Time, error) {
	ectx, cancel := c.etcdCtx(ctx)
	kvs, err := c.kv.get(ectx, c.keys.Group(g.id), false, false)
	cancel()
	if err != nil {
		return time.Time{}, &etcdError{"read group " + g.id, err}
	}
	if len(kvs) != 1 || kvs[0].modRev != g.rev {
		return time.Time{}, nil
	}
	var doc GroupDocument
	if err := json.Unmarshal([]byte(kvs[0].value), &doc); err != nil || doc.State != "Empty" {
		return time.Time{}, nil
	}
	newest := doc.UpdatedMs
	offsets, err := c.readOffsets(ctx, g.id)
	if err != nil {
		return time.Time{}, err
	}
	for _, o := range offsets {
		newest = max(newest, o.CommitMs)
	}
	return time.UnixMilli(newest), nil
}
