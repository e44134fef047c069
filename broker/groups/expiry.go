package groups

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
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
		c.log.Warn("expiring empty groups", "expired", n, "err", err)
	case n > 0:
		c.log.Info("expired empty groups", "groups", n, "retention", c.opts.OffsetsRetention)
	}
	c.mu.Lock()
	if !c.closed {
		c.expiry = c.opts.Clock.AfterFunc(c.opts.OffsetsRetentionCheckInterval, c.expireLoop)
	}
	c.mu.Unlock()
}

// ExpireGroups deletes the groups this broker coordinates that have been empty, with no
// offset committed, for OffsetsRetention: their document and every committed offset go, as
// Kafka expires an empty group's offsets after offsets.retention.minutes (KIP-211), so
// etcd does not keep every consumer group that ever ran. A group counts as empty from the
// document written when its last member left; a group only committing offsets (clients that
// assign partitions themselves) stays while it commits. A stored group still naming members
// from long ago is loaded, so their sessions run out and it becomes empty. It returns how
// many groups it deleted.
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
		if now.Sub(time.UnixMilli(doc.UpdatedMs)) < c.opts.OffsetsRetention || !c.isCoordinator(id) {
			continue
		}
		if doc.State != "Empty" {
			// Loading it starts its stored members' sessions; a later sweep expires it.
			g, err := c.lockGroup(ctx, id, false)
			if err != nil && !errors.Is(err, errNotCoordinator) {
				errs = append(errs, err)
			}
			if g != nil {
				g.mu.Unlock()
			}
			continue
		}
		ok, err := c.expireGroup(ctx, id, now)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			expired++
		}
	}
	return expired, errors.Join(errs...)
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
