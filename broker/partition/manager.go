// Package partition is the broker's data path: it implements logapi.Log over S3 objects and
// per-partition state in etcd.
//
// Appends go into per-partition buffers. One flusher per broker writes everything buffered
// into ONE S3 object (every partition's batches plus a footer index) when the buffers reach
// Options.SegmentBytes or every Options.FlushInterval, commits each partition's new state in
// etcd with fenced transactions (many partitions per transaction), and only then releases
// the waiting appends and makes the data readable. See docs/storage.md.
package partition

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kafscale/kafscale/broker/logapi"
	"github.com/kafscale/kafscale/broker/object"
	"github.com/kafscale/kafscale/broker/optcheck"
	"github.com/kafscale/kafscale/broker/storage"
	"github.com/kafscale/kafscale/internal/metadata"
)

// Options configure a Manager. The broker's config package (broker/config) holds every
// default; broker/app maps a config onto these options. NewManager checks them (Validate)
// and fills nothing in.
type Options struct {
	// NodeID is this broker's node id; it leads the partitions whose snapshot Leader it is.
	NodeID int32
	// SegmentBytes of buffered data (all partitions together) trigger a flush
	// (KAFSCALE_SEGMENT_BYTES).
	SegmentBytes int
	// FlushInterval is the longest data waits in a buffer (KAFSCALE_FLUSH_INTERVAL_MS).
	FlushInterval time.Duration
	// FlushParallelism is how many objects may upload at once: the next object uploads
	// while earlier ones upload or commit; commits stay one at a time, in order (those
	// uploaded behind a commit in flight commit together in the next). Up to twice as many
	// flushes may be in flight in all, the others uploaded and waiting for their commit
	// (KAFSCALE_FLUSH_PARALLELISM; 1 = one upload at a time).
	FlushParallelism int
	// CacheBytes bounds the read cache (KAFSCALE_CACHE_BYTES); 0 disables it: every read
	// goes to S3.
	CacheBytes int64
	// ReadaheadSegments is how many chunks after the ones a fetch read are fetched into
	// the cache in the background (KAFSCALE_READAHEAD_SEGMENTS; 0 disables).
	ReadaheadSegments int
	// CommitTimeout bounds the etcd work of one flush and each partition claim attempt
	// (KAFSCALE_ETCD_REQUEST_TIMEOUT_MS).
	CommitTimeout time.Duration
	// S3RequestTimeout bounds one S3 request of the data path: a GET of chunks or sections,
	// the deletion of an uncommitted object; an object's upload gets twice as long
	// (KAFSCALE_S3_REQUEST_TIMEOUT_MS).
	S3RequestTimeout time.Duration
	// MaxTxnOps and MaxTxnBytes split a flush's commits into etcd transactions.
	MaxTxnOps, MaxTxnBytes int
	// RetentionCheckInterval is how often the partitions this broker leads are checked
	// against retention.ms and retention.bytes, and how often the controller broker sweeps
	// unreferenced objects (KAFSCALE_RETENTION_CHECK_INTERVAL_MS).
	RetentionCheckInterval time.Duration
	// SweepGrace is how old an unreferenced object must be before the sweeper deletes it
	// (KAFSCALE_RETENTION_SWEEP_GRACE_MS). It must exceed the longest a flush can take from
	// naming its object to its commit (2 × S3RequestTimeout + CommitTimeout; a pipelined
	// flush that waited longer for the ones ahead of it fails instead of committing) plus
	// the clock skew between brokers.
	SweepGrace time.Duration
	// ProducerIDExpiration is how long a partition remembers an idle idempotent producer
	// (KAFSCALE_PRODUCER_ID_EXPIRATION_MS).
	ProducerIDExpiration time.Duration
	// Logger receives the data path's warnings; nil discards them.
	Logger *slog.Logger
	// ObserveUpload and ObserveCommit, when set, receive each flush's object upload time (the
	// PUT, with its retries) and its etcd commit time (every transaction of the flush, with
	// retries); the broker feeds its latency histograms with them.
	ObserveUpload, ObserveCommit func(time.Duration)
}

// Validate reports the options that cannot work, all of them.
func (o Options) Validate() error {
	p := optcheck.New("partition")
	optcheck.Positive(p, "SegmentBytes", o.SegmentBytes)
	optcheck.Positive(p, "FlushInterval", o.FlushInterval)
	optcheck.Positive(p, "FlushParallelism", o.FlushParallelism)
	optcheck.Positive(p, "CommitTimeout", o.CommitTimeout)
	optcheck.Positive(p, "S3RequestTimeout", o.S3RequestTimeout)
	optcheck.Positive(p, "MaxTxnOps", o.MaxTxnOps)
	optcheck.Positive(p, "MaxTxnBytes", o.MaxTxnBytes)
	optcheck.Positive(p, "RetentionCheckInterval", o.RetentionCheckInterval)
	optcheck.Positive(p, "SweepGrace", o.SweepGrace)
	optcheck.Positive(p, "ProducerIDExpiration", o.ProducerIDExpiration)
	optcheck.NotNegative(p, "CacheBytes", o.CacheBytes, "0 disables the cache")
	optcheck.NotNegative(p, "ReadaheadSegments", o.ReadaheadSegments, "0 disables readahead")
	return p.Err()
}

// Manager holds the partitions this broker leads. It implements logapi.Log.
type Manager struct {
	opts    Options
	cli     *clientv3.Client
	keys    metadata.Keys
	objects *storage.Store
	cache   *storage.Cache
	log     *slog.Logger

	mu       sync.Mutex
	parts    map[topicPartition]*partition
	gone     map[topicPartition]*partition // stopped incarnations, until the partition comes back
	snap     *metadata.Snapshot
	changed  chan struct{}
	draining bool

	buffered atomic.Int64
	pendSeq  atomic.Uint64 // orders the partitions' buffers by when they started
	cutDone  chan struct{} // closed and replaced after each flush takes the buffers (under mu)
	kick     chan struct{}
	// quiet asks the flusher to flush what is buffered once producers stop sending
	// (kickIfDue); lastAppend is when one last did (UnixNano).
	quiet      chan struct{}
	lastAppend atomic.Int64
	flushReq   chan chan struct{}
	slots      chan struct{}  // one per flush in flight, uploading or waiting for its commit (2 × FlushParallelism)
	uploads    chan struct{}  // one per upload in flight (FlushParallelism)
	jobs       chan *flushJob // flushes for the committer, in cut order
	// retentionReq runs a retention check in the flusher's goroutine.
	retentionReq chan chan struct{}
	stop         chan struct{}
	done         chan struct{}
	stopOnce     sync.Once

	readahead chan struct{} // semaphore for background fetches
	rd        readState     // the read path's loads in flight and decoded index sections
	stats     counters
}

type counters struct {
	flushes, flushBytes, flushErrors, txns, commits, fenced, commitErrors, garbage atomic.Int64
	commitBytes, flushesInFlight                                                   atomic.Int64
	readaheads, reads, retained, swept                                             atomic.Int64
}

// Stats are counters for metrics.
type Stats struct {
	// Flushes is the number of S3 objects written (one per flush).
	Flushes, FlushBytes, FlushErrors int64
	// Txns is the number of etcd commit transactions; Commits the partition states they
	// wrote, CommitBytes the size of those states (etcd write volume of flushes).
	Txns, Commits, Fenced, CommitErrors, CommitBytes int64
	// FlushesInFlight are flushes started and not yet committed or failed
	// (at most 2 × FlushParallelism, of which FlushParallelism uploading).
	FlushesInFlight int64
	// GarbageObjects were written but referenced by no committed state (deleted best effort).
	GarbageObjects int64
	// RetentionCommits moved a log start; SweptObjects were deleted by the sweeper.
	RetentionCommits, SweptObjects int64
	Reads                          int64
	Readaheads                     int64
	BufferedBytes                  int64
	LeadPartitions                 int64
	Cache                          storage.CacheStats
	S3Health                       storage.HealthState
}

type topicPartition struct {
	topic     string
	partition int32
}

func (tp topicPartition) String() string { return fmt.Sprintf("%s/%d", tp.topic, tp.partition) }

var _ logapi.Log = (*Manager)(nil)

// NewManager starts the flusher. The manager leads nothing until Apply gives it a snapshot.
func NewManager(ctx context.Context, opts Options, cli *clientv3.Client, keys metadata.Keys, objects *storage.Store) (*Manager, error) {
	if cli == nil || objects == nil {
		return nil, errors.New("partition: an etcd client and an S3 store are required")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{
		opts:         opts,
		cli:          cli,
		keys:         keys,
		objects:      objects,
		cache:        storage.NewCache(opts.CacheBytes),
		log:          opts.Logger.With("node", opts.NodeID),
		parts:        map[topicPartition]*partition{},
		gone:         map[topicPartition]*partition{},
		snap:         &metadata.Snapshot{ControllerID: -1},
		changed:      make(chan struct{}),
		cutDone:      make(chan struct{}),
		kick:         make(chan struct{}, 1),
		quiet:        make(chan struct{}, 1),
		flushReq:     make(chan chan struct{}),
		slots:        make(chan struct{}, flushWindow*opts.FlushParallelism),
		uploads:      make(chan struct{}, opts.FlushParallelism),
		jobs:         make(chan *flushJob, flushWindow*opts.FlushParallelism),
		retentionReq: make(chan chan struct{}),
		stop:         make(chan struct{}),
		done:         make(chan struct{}),
		readahead:    make(chan struct{}, ReadConcurrency),
	}
	go m.flushLoop()
	go m.retentionLoop()
	return m, nil
}

// Cache returns the read cache (metrics, tests).
func (m *Manager) Cache() *storage.Cache { return m.cache }

// Stats returns the counters.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	lead := int64(0)
	for _, p := range m.parts {
		if p.isLeading() {
			lead++
		}
	}
	m.mu.Unlock()
	return Stats{
		Flushes: m.stats.flushes.Load(), FlushBytes: m.stats.flushBytes.Load(), FlushErrors: m.stats.flushErrors.Load(),
		Txns: m.stats.txns.Load(), Commits: m.stats.commits.Load(), Fenced: m.stats.fenced.Load(),
		CommitErrors: m.stats.commitErrors.Load(), CommitBytes: m.stats.commitBytes.Load(),
		FlushesInFlight: m.stats.flushesInFlight.Load(), GarbageObjects: m.stats.garbage.Load(),
		RetentionCommits: m.stats.retained.Load(), SweptObjects: m.stats.swept.Load(),
		Reads: m.stats.reads.Load(), Readaheads: m.stats.readaheads.Load(),
		BufferedBytes: m.buffered.Load(), LeadPartitions: lead,
		Cache: m.cache.Stats(), S3Health: m.objects.Health(),
	}
}

// Changed returns a channel closed the next time a high watermark moves.
func (m *Manager) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

func (m *Manager) notifyChanged() {
	m.mu.Lock()
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
}

// Apply follows leadership in a new snapshot: it claims the partitions this broker now leads
// (at their LeaderEpoch) and stops leading the others, failing their buffered appends with
// NOT_LEADER_FOR_PARTITION. Wire it with metadata.Store.OnSnapshot.
func (m *Manager) Apply(snap *metadata.Snapshot) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.snap = snap
	if m.draining {
		return
	}
	want := map[topicPartition]bool{}
	for _, t := range snap.Topics {
		for _, sp := range t.Partitions {
			if sp.Leader != m.opts.NodeID {
				continue
			}
			tp := topicPartition{t.Name, sp.ID}
			want[tp] = true
			cur := m.parts[tp]
			if cur != nil && cur.epoch == sp.LeaderEpoch && cur.topicID == t.ID {
				continue
			}
			if cur != nil && cur.epoch > sp.LeaderEpoch && cur.topicID == t.ID {
				continue // an older snapshot arriving late
			}
			m.startLocked(tp, t.ID, sp.LeaderEpoch, cur)
		}
	}
	for tp, p := range m.parts {
		if !want[tp] {
			p.retire(fmt.Errorf("%s: leadership moved away from node %d: %w", tp, m.opts.NodeID, kerr.NotLeaderForPartition), &m.buffered)
			delete(m.parts, tp)
			m.gone[tp] = p
		}
	}
	for tp, g := range m.gone {
		if !g.busy() {
			delete(m.gone, tp) // nothing in flight: nothing to wait for
		}
	}
}

// startLocked replaces prev (if any) with a new incarnation that claims the partition.
func (m *Manager) startLocked(tp topicPartition, topicID [16]byte, epoch int32, prev *partition) {
	if prev != nil {
		prev.retire(fmt.Errorf("%s: leader epoch moved on: %w", tp, kerr.NotLeaderForPartition), &m.buffered)
	}
	p := newPartition(tp, topicID, epoch)
	p.mem = m.cache
	waitFor := prev
	if prev != nil && prev.topicID == topicID {
		// Until the claim completes, reads keep being served from what was committed.
		prev.mu.Lock()
		p.committed = prev.committed
		prev.mu.Unlock()
	} else if waitFor == nil {
		// Leadership comes back: an earlier incarnation's flush may still be committing.
		waitFor = m.gone[tp]
	}
	delete(m.gone, tp)
	m.parts[tp] = p
	go m.claim(p, waitFor)
}

// restart replaces p, when it is still current, by a new incarnation at the same epoch
// that re-reads its state from etcd (after a commit whose outcome is unknown).
func (m *Manager) restart(p *partition, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p.retire(err, &m.buffered)
	if m.parts[p.tp] == p && !m.draining {
		m.startLocked(p.tp, p.topicID, p.epoch, p)
	}
}

// claim makes p the fenced writer of its partition state: it adopts a state this node
// already wrote at the same epoch (a restart), or moves the state to its epoch with a
// compare-and-swap, retrying etcd errors until p is retired. It first waits until prev, the
// incarnation before it, has no commit in flight.
func (m *Manager) claim(p *partition, prev *partition) {
	if prev != nil {
		prev.waitIdle() // its in-flight commit lands (or fails) before we read
	}
	key := m.keys.Partition(p.tp.topic, p.tp.partition)
	backoff := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if p.isRetired() {
			return
		}
		if attempt > 0 {
			time.Sleep(backoff)
			backoff = min(2*backoff, 2*time.Second)
		}
		st, rev, err := m.tryClaim(p, key)
		if err != nil {
			if errors.Is(err, kerr.NotLeaderForPartition) {
				m.stats.fenced.Add(1)
				m.log.Warn("partition claim fenced", "partition", p.tp, "epoch", p.epoch, "err", err)
				p.retire(err, &m.buffered)
				return
			}
			if attempt%20 == 0 {
				m.log.Warn("partition claim failed; retrying", "partition", p.tp, "epoch", p.epoch, "err", err)
			}
			continue
		}
		if st == nil {
			continue // lost a compare-and-swap race: read again
		}
		if p.lead(st, rev) {
			m.notifyChanged()
		}
		return
	}
}

// tryClaim returns the claimed state and its ModRevision, (nil, 0, nil) after a lost race,
// or an error (kerr.NotLeaderForPartition when a newer leader holds the state).
func (m *Manager) tryClaim(p *partition, key string) (*metadata.PartitionState, int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.CommitTimeout)
	defer cancel()
	resp, err := m.cli.Get(ctx, key)
	if err != nil {
		return nil, 0, metadata.EtcdError("read partition state "+p.tp.String(), err)
	}
	var next *metadata.PartitionState
	cmp := clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	if len(resp.Kvs) > 0 {
		kv := resp.Kvs[0]
		cmp = clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)
		var st metadata.PartitionState
		if err := json.Unmarshal(kv.Value, &st); err != nil {
			return nil, 0, fmt.Errorf("decode partition state %s: %w", p.tp, err)
		}
		if st.TopicID == p.topicID {
			if err := m.loadProducers(ctx, &st); err != nil {
				return nil, 0, err
			}
		}
		switch {
		case st.TopicID != p.topicID:
			// Left by a deleted topic of the same name: start afresh.
		case st.LeaderEpoch > p.epoch || (st.LeaderEpoch == p.epoch && st.Leader != m.opts.NodeID):
			return nil, 0, fmt.Errorf("%s: state is held by node %d at epoch %d, this node has epoch %d: %w",
				p.tp, st.Leader, st.LeaderEpoch, p.epoch, kerr.NotLeaderForPartition)
		case st.LeaderEpoch == p.epoch:
			return &st, kv.ModRevision, nil // ours already: a restarted broker adopts it
		default:
			next = st.Clone()
		}
	}
	if next == nil {
		next = &metadata.PartitionState{TopicID: p.topicID}
	}
	next.Leader, next.LeaderEpoch = m.opts.NodeID, p.epoch
	next.AddEpoch(p.epoch, next.HighWatermark)
	data, err := json.Marshal(next)
	if err != nil {
		return nil, 0, err
	}
	tresp, err := m.cli.Txn(ctx).If(cmp).Then(clientv3.OpPut(key, string(data))).Commit()
	if err != nil {
		return nil, 0, metadata.EtcdError("claim partition "+p.tp.String(), err)
	}
	if !tresp.Succeeded {
		return nil, 0, nil
	}
	m.log.Debug("partition claimed", "partition", p.tp, "epoch", p.epoch, "hwm", next.HighWatermark)
	return next, tresp.Header.Revision, nil
}

// loadProducers reads the state's producer section (ProducersRef) into ProducerBase.
func (m *Manager) loadProducers(ctx context.Context, st *metadata.PartitionState) error {
	if st.ProducersRef == nil {
		return nil
	}
	ref := st.ProducersRef
	data, err := m.objects.Get(ctx, ref.Object, ref.Pos, ref.Len)
	if errors.Is(err, storage.ErrNotFound) {
		// Gone (deleted by hand, or swept by an earlier version that did not know the
		// reference): the producers it held are forgotten, as if expired, rather than the
		// partition staying unclaimable. Its data is not affected.
		m.log.Warn("producer section missing; its idempotent producers are forgotten", "object", ref.Object, "err", err)
		st.ProducersRef, st.ProducerBase = nil, nil
		return nil
	}
	if err != nil {
		return fmt.Errorf("load producer state: %w", err)
	}
	sec, err := object.DecodeProducerSection(data)
	if err != nil {
		return fmt.Errorf("%s@%d: %w", ref.Object, ref.Pos, err)
	}
	st.ProducerBase = sec.Producers
	return nil
}

// partitionFor returns the incarnation leading tp once it is ready, or the error a client
// should see.
//
// Reads (forRead) do not wait for a claim when an earlier incarnation left a committed
// state: committed data is immutable, so it stays readable while etcd is unreachable.
func (m *Manager) partitionFor(ctx context.Context, topic string, part int32, forRead bool) (*partition, error) {
	tp := topicPartition{topic, part}
	m.mu.Lock()
	p := m.parts[tp]
	snap := m.snap
	draining := m.draining
	m.mu.Unlock()
	if draining {
		return nil, fmt.Errorf("%s: broker is draining: %w", tp, kerr.NotLeaderForPartition)
	}
	if p == nil {
		if t := snap.Topic(topic); t == nil || t.Partition(part) == nil {
			return nil, fmt.Errorf("%s: %w", tp, kerr.UnknownTopicOrPartition)
		}
		return nil, fmt.Errorf("%s: node %d is not the leader: %w", tp, m.opts.NodeID, kerr.NotLeaderForPartition)
	}
	if forRead {
		p.mu.Lock()
		st, committed := p.status, p.committed
		p.mu.Unlock()
		if st == loading && committed != nil {
			return p, nil
		}
	}
	wait := time.NewTimer(m.opts.CommitTimeout)
	defer wait.Stop()
	select {
	case <-p.ready:
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: partition state still loading: %w", tp, kerr.RequestTimedOut)
	case <-wait.C:
		return nil, fmt.Errorf("%s: partition state still loading: %w", tp, kerr.RequestTimedOut)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status == retired {
		return nil, p.err
	}
	return p, nil
}

// Flush flushes everything buffered now and waits for the commit (tests, tools).
func (m *Manager) Flush(ctx context.Context) error { return m.askFlusher(ctx, m.flushReq) }

// askFlusher hands the flusher goroutine a request on ch and waits until it closes the
// request's channel (the work is done), the manager closes, or ctx ends.
func (m *Manager) askFlusher(ctx context.Context, ch chan<- chan struct{}) error {
	req := make(chan struct{})
	select {
	case ch <- req:
	case <-m.done:
		return errors.New("partition: manager closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-req:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Drain stops accepting appends, flushes and commits everything buffered, then stops
// leading every partition (their appends fail with NOT_LEADER_FOR_PARTITION so clients move
// to the next leader the controller assigns once this broker deregisters).
func (m *Manager) Drain(ctx context.Context) error {
	m.mu.Lock()
	m.draining = true
	m.mu.Unlock()
	for m.buffered.Load() > 0 || m.anyInflight() {
		if err := m.Flush(ctx); err != nil {
			return err
		}
	}
	m.mu.Lock()
	for tp, p := range m.parts {
		p.retire(fmt.Errorf("%s: node %d drained: %w", tp, m.opts.NodeID, kerr.NotLeaderForPartition), &m.buffered)
		delete(m.parts, tp)
	}
	m.mu.Unlock()
	return nil
}

func (m *Manager) anyInflight() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.parts {
		if p.busy() {
			return true
		}
	}
	return false
}

// Close drains (bounded by 2×CommitTimeout) and stops the flusher.
func (m *Manager) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*m.opts.CommitTimeout)
	defer cancel()
	err := m.Drain(ctx)
	m.stopOnce.Do(func() { close(m.stop) })
	<-m.done
	return err
}
