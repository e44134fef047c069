// Package route is the proxy's routing table: the metadata snapshot (partition leaders) and
// the live broker registrations of one cluster, followed in etcd. One watch covers both keys
// and resumes from the last revision it delivered; when it breaks (etcd restarted, the
// revision compacted) the table is read again whole at a new revision and the watch resumes
// from there, so no change is ever missed.
package route

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kafscale/kafscale/internal/metadata"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Broker is a live broker: its node id and the address the proxy dials.
type Broker struct {
	NodeID int32
	Addr   string // host:port
}

// State is one consistent view: the snapshot and the live brokers at one etcd revision.
type State struct {
	Rev      int64
	Snapshot *metadata.Snapshot
	// Live are the registered brokers, sorted by NodeID.
	Live []Broker
}

// Broker returns the live broker with this id.
func (s *State) Broker(id int32) (Broker, bool) {
	i := sort.Search(len(s.Live), func(i int) bool { return s.Live[i].NodeID >= id })
	if i < len(s.Live) && s.Live[i].NodeID == id {
		return s.Live[i], true
	}
	return Broker{}, false
}

// Leader returns the live leader of a partition. known is false when the snapshot has no
// such topic (it may be too new for this view, or not exist); ok is false when the topic is
// known but the partition has no live leader.
func (s *State) Leader(topic string, partition int32) (b Broker, known, ok bool) {
	t := s.Snapshot.Topic(topic)
	if t == nil {
		return Broker{}, false, false
	}
	p := t.Partition(partition)
	if p == nil {
		return Broker{}, true, false
	}
	b, ok = s.Broker(p.Leader)
	return b, true, ok
}

// TopicName returns the name of the topic with this id.
func (s *State) TopicName(id [16]byte) (string, bool) {
	for _, t := range s.Snapshot.Topics {
		if t.ID == id {
			return t.Name, true
		}
	}
	return "", false
}

// Options configure a Table.
type Options struct {
	// RequestTimeout bounds each etcd read (5 s when zero).
	RequestTimeout time.Duration
	Logger         *slog.Logger
	// OnRefresh, when set, is called after every refresh asked for by Refresh.
	OnRefresh func()
}

// Table follows the routing state of one cluster in etcd.
type Table struct {
	cli  *clientv3.Client
	keys metadata.Keys
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	state     *State
	listeners []func(*State)
	changed   chan struct{} // closed and replaced on every change

	refreshMu sync.Mutex // one refresh at a time; callers arriving during one share it
	refreshAt time.Time

	cancel context.CancelFunc
	done   chan struct{}
}

// New reads the current state and starts following it.
func New(ctx context.Context, cli *clientv3.Client, keys metadata.Keys, opts Options) (*Table, error) {
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	t := &Table{cli: cli, keys: keys, opts: opts, log: opts.Logger, changed: make(chan struct{}), done: make(chan struct{}),
		state: &State{Snapshot: &metadata.Snapshot{ControllerID: -1}}}
	rev, err := t.load(ctx)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	go t.watchLoop(wctx, rev)
	return t, nil
}

// Close stops following etcd.
func (t *Table) Close() {
	t.cancel()
	<-t.done
}

// State returns the current view; callers must not modify it.
func (t *Table) State() *State {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state
}

// Changed returns a channel closed at the next change of the view.
func (t *Table) Changed() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.changed
}

// OnChange registers fn, calls it with the current state and after every change.
func (t *Table) OnChange(fn func(*State)) {
	t.mu.Lock()
	t.listeners = append(t.listeners, fn)
	cur := t.state
	t.mu.Unlock()
	fn(cur)
}

// Refresh reads the state from etcd again (a linearizable read), so a route found stale by a
// broker's answer (NOT_LEADER_OR_FOLLOWER, NOT_COORDINATOR, a broker gone) is replaced even
// if the watch lags. Concurrent callers share one read, and reads are at least 50 ms apart.
func (t *Table) Refresh(ctx context.Context) error {
	asked := time.Now()
	t.refreshMu.Lock()
	defer t.refreshMu.Unlock()
	if t.refreshAt.After(asked) {
		return nil // a read that started after this call finished meanwhile
	}
	if wait := time.Until(t.refreshAt.Add(50 * time.Millisecond)); wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	t.refreshAt = time.Now()
	_, err := t.load(ctx)
	if t.opts.OnRefresh != nil {
		t.opts.OnRefresh()
	}
	return err
}

// load reads the snapshot and the registrations at one revision and installs them.
func (t *Table) load(ctx context.Context) (int64, error) {
	cctx, cancel := context.WithTimeout(ctx, t.opts.RequestTimeout)
	defer cancel()
	meta, err := t.cli.Get(cctx, t.keys.Metadata())
	if err != nil {
		return 0, fmt.Errorf("read %s from etcd: %w", t.keys.Metadata(), err)
	}
	rev := meta.Header.Revision
	regs, err := t.cli.Get(cctx, t.keys.Brokers(), clientv3.WithPrefix(), clientv3.WithRev(rev))
	if err != nil {
		return 0, fmt.Errorf("read %s from etcd: %w", t.keys.Brokers(), err)
	}
	snap := &metadata.Snapshot{ControllerID: -1}
	if len(meta.Kvs) > 0 {
		if snap, err = decodeSnapshot(meta.Kvs[0].Value); err != nil {
			return 0, err
		}
	}
	live := map[int32]Broker{}
	for _, kv := range regs.Kvs {
		if b, ok := t.decodeBroker(kv.Key, kv.Value); ok {
			live[b.NodeID] = b
		}
	}
	t.install(rev, snap, live)
	return rev, nil
}

func decodeSnapshot(data []byte) (*metadata.Snapshot, error) {
	snap := &metadata.Snapshot{ControllerID: -1}
	if err := json.Unmarshal(data, snap); err != nil {
		return nil, fmt.Errorf("decode metadata snapshot: %w", err)
	}
	snap.Normalize()
	return snap, nil
}

// decodeBroker reads one registration; a bad one is logged and skipped.
func (t *Table) decodeBroker(key, value []byte) (Broker, bool) {
	var m metadata.Member
	if err := json.Unmarshal(value, &m); err != nil || m.Host == "" || m.Port <= 0 {
		t.log.Warn("ignoring undecodable broker registration", "key", string(key), "err", err)
		return Broker{}, false
	}
	id, err := strconv.ParseInt(strings.TrimPrefix(string(key), t.keys.Brokers()), 10, 32)
	if err != nil || int32(id) != m.NodeID {
		t.log.Warn("ignoring broker registration under a key that is not its node id", "key", string(key), "node", m.NodeID)
		return Broker{}, false
	}
	return Broker{NodeID: m.NodeID, Addr: net.JoinHostPort(m.Host, strconv.Itoa(int(m.Port)))}, true
}

// install makes the state at rev current, unless a newer one already is.
func (t *Table) install(rev int64, snap *metadata.Snapshot, live map[int32]Broker) {
	st := &State{Rev: rev, Snapshot: snap}
	for _, b := range live {
		st.Live = append(st.Live, b)
	}
	sort.Slice(st.Live, func(i, j int) bool { return st.Live[i].NodeID < st.Live[j].NodeID })
	t.mu.Lock()
	if rev <= t.state.Rev {
		t.mu.Unlock()
		return
	}
	t.state = st
	close(t.changed)
	t.changed = make(chan struct{})
	listeners := append([]func(*State){}, t.listeners...)
	t.mu.Unlock()
	for _, fn := range listeners {
		fn(st)
	}
}

// watchLoop applies the changes of the metadata key and the registrations from fromRev+1 on.
// The watch covers the key range from brokers/ to metadata (both included): groups/ and ids/
// lie between them and are skipped; partitions/ and offsets/, where the data path writes,
// lie outside.
func (t *Table) watchLoop(ctx context.Context, fromRev int64) {
	defer close(t.done)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		wch := t.cli.Watch(clientv3.WithRequireLeader(ctx), t.keys.Brokers(),
			clientv3.WithRange(t.keys.Metadata()+"\x00"), clientv3.WithRev(fromRev+1))
		for resp := range wch {
			if err := resp.Err(); err != nil {
				t.log.Debug("routing watch ended", "err", err)
				break
			}
			if len(resp.Events) > 0 {
				t.apply(resp.Events, resp.Header.Revision)
			}
			fromRev = max(fromRev, resp.Header.Revision)
			backoff = 100 * time.Millisecond
		}
		for ctx.Err() == nil {
			rev, err := t.load(ctx)
			if err == nil {
				fromRev = rev
				break
			}
			if !errors.Is(err, context.Canceled) {
				t.log.Warn("reading routes from etcd", "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}
}

// apply folds a batch of watch events into a new state.
func (t *Table) apply(events []*clientv3.Event, rev int64) {
	cur := t.State()
	snap := cur.Snapshot
	live := map[int32]Broker{}
	for _, b := range cur.Live {
		live[b.NodeID] = b
	}
	touched := false
	for _, ev := range events {
		key := string(ev.Kv.Key)
		switch {
		case key == t.keys.Metadata():
			touched = true
			if ev.Type == clientv3.EventTypeDelete {
				snap = &metadata.Snapshot{ControllerID: -1}
				continue
			}
			s, err := decodeSnapshot(ev.Kv.Value)
			if err != nil {
				t.log.Error("ignoring undecodable metadata snapshot", "rev", ev.Kv.ModRevision, "err", err)
				continue
			}
			snap = s
		case strings.HasPrefix(key, t.keys.Brokers()):
			touched = true
			id, err := strconv.ParseInt(strings.TrimPrefix(key, t.keys.Brokers()), 10, 32)
			if err != nil {
				continue
			}
			if ev.Type == clientv3.EventTypeDelete {
				delete(live, int32(id))
				continue
			}
			if b, ok := t.decodeBroker(ev.Kv.Key, ev.Kv.Value); ok {
				live[b.NodeID] = b
			}
		}
	}
	if touched {
		t.install(rev, snap, live)
	}
}
