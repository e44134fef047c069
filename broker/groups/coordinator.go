// Package groups is the broker's consumer group coordinator: the classic Kafka group
// membership protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) with its state machine
// Empty → PreparingRebalance → CompletingRebalance → Stable (and Dead), committed offsets,
// and the group admin APIs. Group state and offsets are persisted in etcd under
// groups/<group> and offsets/<group>/<topic>/<p> (metadata.Keys), so a restarted or new
// coordinator recovers them.
//
// Exactly one broker coordinates a group: CoordinatorFor hashes the group id over the live
// brokers of the metadata snapshot. Every etcd write of a group is a transaction that
// compares the group document's mod revision with the one this broker last saw, so a broker
// that still believes it coordinates a group after the broker set changed cannot overwrite
// what the new coordinator wrote: it unloads the group and answers NOT_COORDINATOR.
package groups

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kafscale/kafscale/broker/optcheck"
	"github.com/kafscale/kafscale/internal/metadata"
)

// Options configure a Coordinator; New checks them (Validate). The broker maps its
// configuration onto them (broker/app.GroupOptions).
type Options struct {
	// NodeID is this broker's id in the metadata snapshot.
	NodeID int32
	// RequestTimeout bounds every etcd request (KAFSCALE_ETCD_REQUEST_TIMEOUT_MS).
	RequestTimeout time.Duration
	// MinSessionTimeout and MaxSessionTimeout bound the session timeouts members may ask for
	// (KAFSCALE_GROUP_MIN_SESSION_TIMEOUT_MS, KAFSCALE_GROUP_MAX_SESSION_TIMEOUT_MS).
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// InitialRebalanceDelay is how long the first rebalance of an empty group waits for more
	// members, extended while members keep arriving, up to the rebalance timeout
	// (KAFSCALE_GROUP_INITIAL_REBALANCE_DELAY_MS; 0: none).
	InitialRebalanceDelay time.Duration
	// OffsetsRetention is how long a group stays once it is empty and commits nothing: then
	// it is deleted with its offsets (KAFSCALE_OFFSETS_RETENTION_MS). A stable consumer group's offsets of topics it no longer
	// subscribes to go once committed this long ago.
	OffsetsRetention time.Duration
	// OffsetsRetentionCheckInterval is how often the coordinator looks for such groups and offsets
	// (KAFSCALE_OFFSETS_RETENTION_CHECK_INTERVAL_MS).
	OffsetsRetentionCheckInterval time.Duration
	// MaxMetadataBytes caps the metadata string of a committed offset.
	MaxMetadataBytes int
	// Clock is the time source for session and rebalance timeouts (nil: the real clock);
	// tests pass a fake one.
	Clock Clock
	// Logger receives state changes at debug level and etcd failures at warn level (nil:
	// discarded).
	Logger *slog.Logger
}

// Validate reports the options that cannot work, all of them. The broker's defaults live in
// broker/config; nothing is filled in here.
func (o Options) Validate() error {
	p := optcheck.New("groups")
	optcheck.Positive(p, "RequestTimeout", o.RequestTimeout)
	optcheck.Positive(p, "MinSessionTimeout", o.MinSessionTimeout)
	optcheck.Positive(p, "MaxSessionTimeout", o.MaxSessionTimeout)
	optcheck.Positive(p, "OffsetsRetention", o.OffsetsRetention)
	optcheck.Positive(p, "OffsetsRetentionCheckInterval", o.OffsetsRetentionCheckInterval)
	optcheck.Positive(p, "MaxMetadataBytes", o.MaxMetadataBytes)
	optcheck.NotNegative(p, "InitialRebalanceDelay", o.InitialRebalanceDelay, "0: none")
	if o.MinSessionTimeout > o.MaxSessionTimeout {
		p.Failf("MinSessionTimeout %s exceeds MaxSessionTimeout %s", o.MinSessionTimeout, o.MaxSessionTimeout)
	}
	return p.Err()
}

// Coordinator coordinates the groups that hash to this broker.
type Coordinator struct {
	kv       kv
	keys     metadata.Keys
	snapshot func() *metadata.Snapshot
	opts     Options
	log      *slog.Logger

	mu     sync.Mutex
	groups map[string]*group // loaded groups this broker coordinates
	closed bool
	sweep  Timer // the next sweep of idle groups
	expiry Timer // the next look for expired groups and offsets

	expired        atomic.Int64 // groups deleted by ExpireGroups
	offsetsExpired atomic.Int64 // offsets of unsubscribed topics deleted by ExpireGroups
}

// Stats are the coordinator's gauges and counters.
type Stats struct {
	// Loaded is the groups this broker holds in memory (with members, or recently used).
	Loaded int
	// Expired counts the groups deleted after OffsetsRetention empty.
	Expired int64
	// OffsetsExpired counts the committed offsets deleted because their stable consumer
	// group no longer subscribes to their topic and they are older than OffsetsRetention.
	OffsetsExpired int64
}

// Stats returns the coordinator's current figures.
func (c *Coordinator) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Loaded: len(c.groups), Expired: c.expired.Load(), OffsetsExpired: c.offsetsExpired.Load()}
}

// Members returns the member count of every loaded group this broker coordinates, by
// group id (groups being loaded or dropped may be missing).
func (c *Coordinator) Members() map[string]int {
	c.mu.Lock()
	loaded := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		loaded = append(loaded, g)
	}
	c.mu.Unlock()
	// Each group's lock is taken without the coordinator's, as request handlers do.
	out := make(map[string]int, len(loaded))
	for _, g := range loaded {
		g.mu.Lock()
		if !g.gone {
			out[g.id] = len(g.members)
		}
		g.mu.Unlock()
	}
	return out
}

// sweepInterval is how often empty groups are dropped from memory; their state is in etcd
// and a later request loads them again.
const sweepInterval = time.Minute

// New returns a coordinator that reads the cluster view from snapshot (never nil) and keeps
// group state in etcd through cli.
func New(cli *clientv3.Client, keys metadata.Keys, snapshot func() *metadata.Snapshot, opts Options) (*Coordinator, error) {
	return newCoordinator(etcdKV{cli}, keys, snapshot, opts)
}

func newCoordinator(store kv, keys metadata.Keys, snapshot func() *metadata.Snapshot, opts Options) (*Coordinator, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Coordinator{
		kv:       store,
		keys:     keys,
		snapshot: snapshot,
		opts:     opts,
		log:      opts.Logger,
		groups:   map[string]*group{},
	}
	c.sweep = opts.Clock.AfterFunc(sweepInterval, c.sweepIdle)
	c.expiry = opts.Clock.AfterFunc(opts.OffsetsRetentionCheckInterval, c.expireLoop)
	return c, nil
}

// sweepIdle drops the loaded groups that are empty and stored as such (or were never
// stored), so a broker does not keep every group it ever saw in memory.
func (c *Coordinator) sweepIdle() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	loaded := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		loaded = append(loaded, g)
	}
	c.mu.Unlock()
	for _, g := range loaded {
		g.mu.Lock()
		if !g.gone && g.state == Empty && len(g.members) == 0 && len(g.pending) == 0 && (g.rev == 0 || g.persistedEmpty) {
			c.drop(g)
		}
		g.mu.Unlock()
	}
	c.mu.Lock()
	if !c.closed {
		c.sweep = c.opts.Clock.AfterFunc(sweepInterval, c.sweepIdle)
	}
	c.mu.Unlock()
}

// CoordinatorFor returns the NodeID of the broker coordinating group in snap: FNV-1a of the
// group id modulo the number of brokers, over the brokers sorted by NodeID; -1 when the
// snapshot has no brokers. Every broker computes the same answer from the same snapshot.
func CoordinatorFor(snap *metadata.Snapshot, group string) int32 {
	if snap == nil || len(snap.Brokers) == 0 {
		return -1
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(group))
	return snap.Brokers[h.Sum32()%uint32(len(snap.Brokers))].NodeID
}

// Coordinator implements server.Groups: it is CoordinatorFor.
func (c *Coordinator) Coordinator(snap *metadata.Snapshot, group string) int32 {
	return CoordinatorFor(snap, group)
}

// Apply unloads the groups this broker no longer coordinates in snap, answering their
// waiting members NOT_COORDINATOR, so that a group moving away and back is reloaded from
// etcd. Wire it with metadata.Store.OnSnapshot.
func (c *Coordinator) Apply(snap *metadata.Snapshot) {
	c.mu.Lock()
	var gone []*group
	for id, g := range c.groups {
		if CoordinatorFor(snap, id) != c.opts.NodeID {
			gone = append(gone, g)
			delete(c.groups, id)
		}
	}
	c.mu.Unlock()
	for _, g := range gone {
		g.mu.Lock()
		g.unload()
		g.mu.Unlock()
		c.log.Info("group moved to another coordinator", "group", g.id)
	}
}

// Close answers every waiting member NOT_COORDINATOR and stops the timers; later requests
// are answered NOT_COORDINATOR. Call it when the broker starts draining.
func (c *Coordinator) Close() {
	c.mu.Lock()
	c.closed = true
	c.sweep.Stop()
	c.expiry.Stop()
	all := c.groups
	c.groups = map[string]*group{}
	c.mu.Unlock()
	for _, g := range all {
		g.mu.Lock()
		g.unload()
		g.mu.Unlock()
	}
}

var (
	// errNotCoordinator: the group hashes to another broker, or this one closed.
	errNotCoordinator = errors.New("not the coordinator of this group")
	// errFenced: the group document changed under us in etcd; another broker coordinates it.
	errFenced = errors.New("group document changed in etcd: another broker coordinates this group")
)

// isCoordinator says whether this broker coordinates the group now.
func (c *Coordinator) isCoordinator(group string) bool {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	return !closed && CoordinatorFor(c.snapshot(), group) == c.opts.NodeID
}

// lockGroup returns the group locked, loading it from etcd first if this broker has not
// loaded it. With create false a group that exists neither here nor in etcd is nil (and
// nothing is locked). The error is errNotCoordinator or an etcd failure.
func (c *Coordinator) lockGroup(ctx context.Context, id string, create bool) (*group, error) {
	for {
		if !c.isCoordinator(id) {
			return nil, errNotCoordinator
		}
		c.mu.Lock()
		g := c.groups[id]
		c.mu.Unlock()
		if g == nil {
			loaded, err := c.loadGroup(ctx, id)
			if err != nil {
				return nil, err
			}
			if loaded == nil && !create {
				return nil, nil
			}
			if loaded == nil {
				loaded = c.newGroup(id)
			}
			c.mu.Lock()
			switch {
			// the snapshot may have moved the group while it loaded; Apply has already run
			// for that snapshot, so looking again here is what keeps a moved group out
			case c.closed || CoordinatorFor(c.snapshot(), id) != c.opts.NodeID:
				c.mu.Unlock()
				return nil, errNotCoordinator
			case c.groups[id] != nil:
				g = c.groups[id]
			default:
				g = loaded
				c.groups[id] = g
				g.mu.Lock()
				g.startLoadedMembers()
				g.mu.Unlock()
			}
			c.mu.Unlock()
		}
		g.mu.Lock()
		if !g.gone {
			return g, nil
		}
		g.mu.Unlock() // unloaded or deleted meanwhile: look again
	}
}

// drop forgets a group whose lock the caller holds (deleted, or fenced by another broker).
func (c *Coordinator) drop(g *group) {
	g.unload()
	c.mu.Lock()
	if c.groups[g.id] == g {
		delete(c.groups, g.id)
	}
	c.mu.Unlock()
}

// etcdCtx bounds one etcd request.
func (c *Coordinator) etcdCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.opts.RequestTimeout)
}
