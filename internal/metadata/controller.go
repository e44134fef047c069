package metadata

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// ControllerOptions tune RunController.
type ControllerOptions struct {
	// SessionTTL is the election session's lease TTL (10 s): how long a dead controller
	// holds the election.
	SessionTTL time.Duration
	// Resync re-checks the assignment this often even without a change (5 s).
	Resync time.Duration
}

// RunController campaigns for the leader-assignment controller under
// Keys.Prefix()+"controller" and, while elected, keeps the snapshot consistent with the
// live broker registrations: Snapshot.Brokers equals the registered brokers, ControllerID is
// this node, and every partition whose leader is not live moves to the live broker leading
// the fewest partitions, with LeaderEpoch+1. Run it on every broker; one at a time acts. It
// returns when ctx ends.
func (s *Store) RunController(ctx context.Context, nodeID int32, opts ControllerOptions) error {
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 10 * time.Second
	}
	if opts.Resync <= 0 {
		opts.Resync = 5 * time.Second
	}
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		err := s.campaign(ctx, nodeID, opts)
		if ctx.Err() != nil {
			break
		}
		s.log.Warn("controller campaign ended; retrying", "node", nodeID, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	return nil
}

func (s *Store) campaign(ctx context.Context, nodeID int32, opts ControllerOptions) error {
	sess, err := concurrency.NewSession(s.cli, concurrency.WithTTL(int((opts.SessionTTL+time.Second-1)/time.Second)), concurrency.WithContext(ctx))
	if err != nil {
		return err
	}
	defer sess.Close()
	el := concurrency.NewElection(sess, s.keys.Prefix()+"controller")
	if err := el.Campaign(ctx, strconv.Itoa(int(nodeID))); err != nil {
		return err
	}
	s.log.Info("elected leader-assignment controller", "node", nodeID)
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = el.Resign(rctx)
	}()

	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Registrations coming and going, and snapshot writes (a new topic to assign).
	brokers := s.cli.Watch(clientv3.WithRequireLeader(lctx), s.keys.Brokers(), clientv3.WithPrefix())
	meta := s.cli.Watch(clientv3.WithRequireLeader(lctx), s.keys.Metadata())
	tick := time.NewTicker(opts.Resync)
	defer tick.Stop()
	for {
		if err := s.reconcile(lctx, nodeID); err != nil && lctx.Err() == nil {
			s.log.Warn("controller reconcile failed", "err", err)
		}
		select {
		case <-lctx.Done():
			return lctx.Err()
		case <-sess.Done():
			return errors.New("controller session lost")
		case resp, ok := <-brokers:
			if !ok || resp.Err() != nil {
				return errors.New("controller watch ended")
			}
		case resp, ok := <-meta:
			if !ok || resp.Err() != nil {
				return errors.New("controller watch ended")
			}
		case <-tick.C:
		}
	}
}

// reconcile brings the snapshot in line with the live brokers (one CAS write, none when
// nothing changes).
func (s *Store) reconcile(ctx context.Context, nodeID int32) error {
	live, err := s.LiveBrokers(ctx)
	if err != nil {
		return err
	}
	_, err = s.Update(ctx, func(snap *Snapshot) error {
		if !Assign(snap, live, nodeID) {
			return ErrNoChange
		}
		return nil
	})
	return err
}

// Assign makes snap agree with the live brokers: Brokers = live, ControllerID = controller,
// a ClusterID when there is none, and every partition led by a live broker when one exists
// (a partition whose leader died moves to the least-loaded live broker, LeaderEpoch+1; with
// no live broker it gets leader -1, LeaderEpoch+1). It reports whether anything changed.
func Assign(snap *Snapshot, live []Broker, controller int32) bool {
	changed := false
	if snap.ClusterID == "" {
		snap.ClusterID = newClusterID()
		changed = true
	}
	if snap.ControllerID != controller {
		snap.ControllerID = controller
		changed = true
	}
	if !equalBrokers(snap.Brokers, live) {
		snap.Brokers = append([]Broker(nil), live...)
		changed = true
	}
	load := map[int32]int{}
	isLive := map[int32]bool{}
	for _, b := range live {
		load[b.NodeID] = 0
		isLive[b.NodeID] = true
	}
	for _, t := range snap.Topics {
		for _, p := range t.Partitions {
			if isLive[p.Leader] {
				load[p.Leader]++
			}
		}
	}
	for ti := range snap.Topics {
		parts := snap.Topics[ti].Partitions
		for pi := range parts {
			p := &parts[pi]
			if isLive[p.Leader] {
				continue
			}
			next := leastLoaded(live, load)
			if next == p.Leader {
				continue // -1 stays -1 while no broker is live
			}
			p.Leader = next
			p.LeaderEpoch++
			if next >= 0 {
				load[next]++
			}
			changed = true
		}
	}
	return changed
}

// leastLoaded returns the live broker with the fewest partitions (lowest NodeID on ties),
// or -1.
func leastLoaded(live []Broker, load map[int32]int) int32 {
	best := int32(-1)
	for _, b := range live {
		if best < 0 || load[b.NodeID] < load[best] {
			best = b.NodeID
		}
	}
	return best
}

func equalBrokers(a, b []Broker) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func newClusterID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}
