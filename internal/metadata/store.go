package metadata

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// StoreOptions configure a Store.
type StoreOptions struct {
	// RequestTimeout bounds each etcd call made for a request when the caller's context has
	// no earlier deadline (KAFSCALE_ETCD_REQUEST_TIMEOUT_MS, 5 s).
	RequestTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// DefaultStoreOptions returns o with zero fields set to their defaults.
func DefaultStoreOptions(o StoreOptions) StoreOptions {
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// ErrNoChange, returned by an Update function, ends the update without writing.
var ErrNoChange = errors.New("metadata: no change")

// Store reads, watches and publishes the metadata snapshot of one cluster. It implements
// the broker's server.Cluster.
type Store struct {
	cli  *clientv3.Client
	keys Keys
	opts StoreOptions
	log  *slog.Logger

	mu        sync.Mutex
	snap      *Snapshot
	rev       int64 // ModRevision of the snapshot key (0: absent)
	listeners []func(*Snapshot)
	notifyMu  sync.Mutex // serialises listener calls, in revision order

	cancel context.CancelFunc
	done   chan struct{}

	pids producerIDBlock // InitProducerId's ids (producerids.go)
}

// NewStore reads the current snapshot (an empty one when none was published yet) and
// starts watching it.
func NewStore(ctx context.Context, cli *clientv3.Client, keys Keys, opts StoreOptions) (*Store, error) {
	opts = DefaultStoreOptions(opts)
	s := &Store{cli: cli, keys: keys, opts: opts, log: opts.Logger, snap: emptySnapshot(), done: make(chan struct{})}
	_, headerRev, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.watchLoop(wctx, headerRev)
	return s, nil
}

// Close stops the watch.
func (s *Store) Close() {
	s.cancel()
	<-s.done
}

// Keys returns the key schema of the store's cluster.
func (s *Store) Keys() Keys { return s.keys }

// Client returns the etcd client.
func (s *Store) Client() *clientv3.Client { return s.cli }

func emptySnapshot() *Snapshot { return &Snapshot{ControllerID: -1} }

// Snapshot returns the latest snapshot. Callers must not modify it.
func (s *Store) Snapshot() *Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap
}

// OnSnapshot registers fn, calls it with the current snapshot, and calls it again after
// every change (one call at a time, in order).
func (s *Store) OnSnapshot(fn func(*Snapshot)) {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	s.mu.Lock()
	s.listeners = append(s.listeners, fn)
	cur := s.snap
	s.mu.Unlock()
	fn(cur)
}

// set installs snap if it is newer than what the store holds and tells the listeners.
func (s *Store) set(snap *Snapshot, modRev int64) {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	s.mu.Lock()
	if modRev != 0 && modRev <= s.rev {
		s.mu.Unlock()
		return
	}
	s.snap, s.rev = snap, modRev
	listeners := append([]func(*Snapshot){}, s.listeners...)
	s.mu.Unlock()
	for _, fn := range listeners {
		fn(snap)
	}
}

// timeout derives a context bounded by RequestTimeout.
func (s *Store) timeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opts.RequestTimeout)
}

// EtcdError wraps an etcd failure as kerr.RequestTimedOut, keeping the cause.
func EtcdError(op string, err error) error {
	return fmt.Errorf("%s: %w (etcd: %w)", op, kerr.RequestTimedOut, err)
}

func decodeSnapshot(data []byte) (*Snapshot, error) {
	snap := emptySnapshot()
	if err := json.Unmarshal(data, snap); err != nil {
		return nil, fmt.Errorf("decode metadata snapshot: %w", err)
	}
	snap.Normalize()
	return snap, nil
}

// load reads the snapshot key, installs it, and returns its ModRevision and the store
// revision of the read.
func (s *Store) load(ctx context.Context) (modRev, headerRev int64, err error) {
	cctx, cancel := s.timeout(ctx)
	defer cancel()
	resp, err := s.cli.Get(cctx, s.keys.Metadata())
	if err != nil {
		return 0, 0, EtcdError("read metadata", err)
	}
	snap, modRev := emptySnapshot(), int64(0)
	if len(resp.Kvs) > 0 {
		if snap, err = decodeSnapshot(resp.Kvs[0].Value); err != nil {
			return 0, 0, err
		}
		modRev = resp.Kvs[0].ModRevision
	}
	s.set(snap, modRev)
	return modRev, resp.Header.Revision, nil
}

// watchLoop follows the snapshot key; when the watch breaks (etcd restarted, compaction,
// lost leader) it reloads and watches again.
func (s *Store) watchLoop(ctx context.Context, fromRev int64) {
	defer close(s.done)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		wch := s.cli.Watch(clientv3.WithRequireLeader(ctx), s.keys.Metadata(), clientv3.WithRev(fromRev+1))
		for resp := range wch {
			if err := resp.Err(); err != nil {
				s.log.Debug("metadata watch ended", "err", err)
				break
			}
			for _, ev := range resp.Events {
				switch ev.Type {
				case clientv3.EventTypePut:
					snap, err := decodeSnapshot(ev.Kv.Value)
					if err != nil {
						s.log.Error("ignoring undecodable metadata snapshot", "rev", ev.Kv.ModRevision, "err", err)
						continue
					}
					s.set(snap, ev.Kv.ModRevision)
				case clientv3.EventTypeDelete:
					s.set(emptySnapshot(), ev.Kv.ModRevision)
				}
			}
			fromRev = resp.Header.Revision
			backoff = 100 * time.Millisecond
		}
		for ctx.Err() == nil {
			_, rev, err := s.load(ctx)
			if err == nil {
				fromRev = rev
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}
}

// Update is a read-modify-write of the snapshot with a compare-and-swap on its ModRevision,
// retried on conflict until ctx ends. fn gets a private copy; returning ErrNoChange skips
// the write. ops adds operations to the same transaction (it sees the new snapshot).
func (s *Store) Update(ctx context.Context, fn func(*Snapshot) error) (*Snapshot, error) {
	return s.update(ctx, fn, nil)
}

func (s *Store) update(ctx context.Context, fn func(*Snapshot) error, ops func(*Snapshot) []clientv3.Op) (*Snapshot, error) {
	key := s.keys.Metadata()
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, EtcdError("update metadata", ctx.Err())
			case <-time.After(time.Duration(attempt) * 10 * time.Millisecond):
			}
		}
		cctx, cancel := s.timeout(ctx)
		resp, err := s.cli.Get(cctx, key)
		if err != nil {
			cancel()
			return nil, EtcdError("read metadata", err)
		}
		cur, rev := emptySnapshot(), int64(0)
		if len(resp.Kvs) > 0 {
			if cur, err = decodeSnapshot(resp.Kvs[0].Value); err != nil {
				cancel()
				return nil, err
			}
			rev = resp.Kvs[0].ModRevision
		}
		next := cur.Clone()
		if err := fn(next); err != nil {
			cancel()
			if errors.Is(err, ErrNoChange) {
				s.set(cur, rev)
				return cur, nil
			}
			return nil, err
		}
		next.Normalize()
		data, err := json.Marshal(next)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("encode metadata snapshot: %w", err)
		}
		cmp := clientv3.Compare(clientv3.ModRevision(key), "=", rev)
		if rev == 0 {
			cmp = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
		}
		then := []clientv3.Op{clientv3.OpPut(key, string(data))}
		if ops != nil {
			then = append(then, ops(next)...)
		}
		tresp, err := s.cli.Txn(cctx).If(cmp).Then(then...).Commit()
		cancel()
		if err != nil {
			return nil, EtcdError("publish metadata", err)
		}
		if tresp.Succeeded {
			s.set(next, tresp.Header.Revision)
			return next, nil
		}
	}
}

// Clone returns a deep copy of the snapshot.
func (s *Snapshot) Clone() *Snapshot {
	c := *s
	c.Brokers = append([]Broker(nil), s.Brokers...)
	c.Topics = make([]Topic, len(s.Topics))
	for i, t := range s.Topics {
		t.Partitions = append([]Partition(nil), t.Partitions...)
		if t.Configs != nil {
			cfg := make(map[string]string, len(t.Configs))
			for k, v := range t.Configs {
				cfg[k] = v
			}
			t.Configs = cfg
		}
		c.Topics[i] = t
	}
	return &c
}
