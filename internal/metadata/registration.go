package metadata

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

type mvccKV = mvccpb.KeyValue

// ErrNodeIDLost is reported by Registration.Lost when a broker with a claimed node id
// (ClaimNodeID) lost its lease and, before it could renew it, another broker claimed the id.
// The broker must stop: its id is baked into its partition manager, groups and controller.
var ErrNodeIDLost = errors.New("node id claimed by another broker while this broker's etcd lease was lost")

// Registration keeps a broker's liveness key (Keys.Broker(id)) alive under an etcd lease,
// re-creating it when the lease is lost (an etcd outage longer than the TTL). A broker whose
// id was claimed (ClaimNodeID) also holds Keys.ID(id) under the same lease, so deregistering
// (Close) or a lease expiry frees the id together with the liveness key.
type Registration struct {
	s       *Store
	nodeID  int32
	claimed bool // the id came from ClaimNodeID: Keys.ID(nodeID) is held too
	ttl     time.Duration
	cancel  context.CancelFunc
	done    chan struct{}
	lost    chan struct{}

	mu      sync.Mutex
	b       *Member // the registration value; nil until published
	lease   clientv3.LeaseID
	lostErr error
	closed  bool
}

func leaseTTL(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		ttl = 10 * time.Second
	}
	return max(ttl, 2*time.Second)
}

// Member is a broker's registration value under Keys.Broker(id): its advertised address
// (what the controller copies into Snapshot.Brokers) and what the operator needs to find and
// drain it. Readers that decode a Broker ignore the other fields.
type Member struct {
	Broker
	// Pod is the Kubernetes pod the broker runs in (KAFSCALE_POD_NAME, else the host name).
	Pod string `json:"pod,omitempty"`
	// ControlAddr is the host:port of the broker's control-plane gRPC service
	// (KAFSCALE_CONTROL_ADDR); empty when the broker serves none.
	ControlAddr string `json:"controlAddr,omitempty"`
	// MetricsAddr is the host:port of the broker's /metrics, /healthz and /readyz
	// (KAFSCALE_METRICS_ADDR), so the console finds every broker's metrics.
	MetricsAddr string `json:"metricsAddr,omitempty"`
	// Version is the release the broker was built from (internal/buildinfo).
	Version string `json:"version,omitempty"`
}

// Register writes the broker's advertised address under Keys.Broker(b.NodeID) with a
// lease of ttl (at least 2 s; 10 s when zero) and keeps it alive until Close. The id is the
// caller's (KAFSCALE_BROKER_ID=<n>): the key is written whether or not another broker holds it.
func (s *Store) Register(ctx context.Context, b Broker, ttl time.Duration) (*Registration, error) {
	return s.RegisterMember(ctx, Member{Broker: b}, ttl)
}

// RegisterMember is Register with the whole registration value.
func (s *Store) RegisterMember(ctx context.Context, m Member, ttl time.Duration) (*Registration, error) {
	r := s.newRegistration(m.NodeID, false, ttl)
	r.b = &m
	lease, err := r.register(ctx)
	if err != nil {
		return nil, err
	}
	r.start(lease)
	return r, nil
}

// ClaimNodeID picks the lowest node id that neither a live broker (Keys.Broker) nor another
// claim (Keys.ID) holds, and claims it by creating Keys.ID(id) under a new lease of ttl in an
// etcd transaction that succeeds only if neither key exists (CreateRevision == 0): two
// brokers claiming at once never get the same id; the loser picks again. The lease is kept
// alive from now on; Publish then writes the liveness key under the same lease, and Close
// frees both. Used for KAFSCALE_BROKER_ID=auto.
func (s *Store) ClaimNodeID(ctx context.Context, ttl time.Duration) (*Registration, error) {
	r := s.newRegistration(0, true, ttl)
	cctx, cancel := s.timeout(ctx)
	defer cancel()
	grant, err := s.cli.Grant(cctx, r.ttlSeconds())
	if err != nil {
		return nil, EtcdError("claim a node id", err)
	}
	for {
		used, err := s.usedNodeIDs(cctx)
		if err != nil {
			s.revoke(grant.ID)
			return nil, err
		}
		id := lowestFree(used)
		ok, err := r.claim(cctx, id, grant.ID)
		if err != nil {
			s.revoke(grant.ID)
			return nil, err
		}
		if ok {
			r.nodeID = id
			r.start(grant.ID)
			s.log.Info("claimed node id", "node", id, "lease", fmt.Sprintf("%x", int64(grant.ID)))
			return r, nil
		}
		// Another broker took it between the read and the transaction: read again.
	}
}

func (s *Store) newRegistration(nodeID int32, claimed bool, ttl time.Duration) *Registration {
	return &Registration{s: s, nodeID: nodeID, claimed: claimed, ttl: leaseTTL(ttl), done: make(chan struct{}), lost: make(chan struct{})}
}

func (r *Registration) ttlSeconds() int64 { return int64((r.ttl + time.Second - 1) / time.Second) }

func (r *Registration) start(lease clientv3.LeaseID) {
	r.lease = lease
	rctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go r.keepAlive(rctx, lease)
}

// usedNodeIDs returns the ids held by a liveness key or a claim.
func (s *Store) usedNodeIDs(ctx context.Context) (map[int32]bool, error) {
	used := map[int32]bool{}
	for _, prefix := range []string{s.keys.Brokers(), s.keys.IDs()} {
		resp, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			return nil, EtcdError("claim a node id", err)
		}
		for _, kv := range resp.Kvs {
			if n, err := strconv.ParseInt(strings.TrimPrefix(string(kv.Key), prefix), 10, 32); err == nil && n >= 0 {
				used[int32(n)] = true
			}
		}
	}
	return used, nil
}

// lowestFree returns the smallest id >= 0 not in used.
func lowestFree(used map[int32]bool) int32 {
	var id int32
	for used[id] {
		id++
	}
	return id
}

// claim creates Keys.ID(id) (and the liveness key, once published) under lease, if neither
// key exists. It reports whether the id is now this broker's.
func (r *Registration) claim(ctx context.Context, id int32, lease clientv3.LeaseID) (bool, error) {
	k := r.s.keys
	ops := []clientv3.Op{clientv3.OpPut(k.ID(id), "", clientv3.WithLease(lease))}
	if r.b != nil {
		data, _ := json.Marshal(r.b)
		ops = append(ops, clientv3.OpPut(k.Broker(id), string(data), clientv3.WithLease(lease)))
	}
	resp, err := r.s.cli.Txn(ctx).If(
		clientv3.Compare(clientv3.CreateRevision(k.ID(id)), "=", 0),
		clientv3.Compare(clientv3.CreateRevision(k.Broker(id)), "=", 0),
	).Then(ops...).Commit()
	if err != nil {
		return false, EtcdError(fmt.Sprintf("claim node id %d", id), err)
	}
	return resp.Succeeded, nil
}

// NodeID is the broker's node id: the one registered, or the one claimed.
func (r *Registration) NodeID() int32 { return r.nodeID }

// Publish writes the advertised address under Keys.Broker(NodeID()) with the lease of the
// claim, making the broker live. It is for registrations from ClaimNodeID; it fails if the
// claim is no longer held under the current lease.
func (r *Registration) Publish(ctx context.Context, b Broker) error {
	return r.PublishMember(ctx, Member{Broker: b})
}

// PublishMember is Publish with the whole registration value.
func (r *Registration) PublishMember(ctx context.Context, b Member) error {
	b.NodeID = r.nodeID
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lostErr != nil {
		return r.lostErr
	}
	r.b = &b
	data, _ := json.Marshal(b)
	cctx, cancel := r.s.timeout(ctx)
	defer cancel()
	k := r.s.keys
	resp, err := r.s.cli.Txn(cctx).If(
		clientv3.Compare(clientv3.LeaseValue(k.ID(r.nodeID)), "=", r.lease),
	).Then(clientv3.OpPut(k.Broker(r.nodeID), string(data), clientv3.WithLease(r.lease))).Commit()
	if err != nil {
		return EtcdError(fmt.Sprintf("register broker %d", r.nodeID), err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("register broker %d: the claim %s is not held under this broker's lease", r.nodeID, k.ID(r.nodeID))
	}
	return nil
}

// Lost is closed when the registration ended without Close: the claimed id was taken by
// another broker while this one's lease was lost (Err then returns ErrNodeIDLost).
func (r *Registration) Lost() <-chan struct{} { return r.lost }

// Err says why Lost was closed.
func (r *Registration) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lostErr
}

// register grants a new lease and writes the keys under it: the liveness key for an explicit
// id; for a claimed id, the claim and the liveness key, only if no other broker holds the id
// (errIDTaken otherwise).
func (r *Registration) register(ctx context.Context) (clientv3.LeaseID, error) {
	cctx, cancel := r.s.timeout(ctx)
	defer cancel()
	grant, err := r.s.cli.Grant(cctx, r.ttlSeconds())
	if err != nil {
		return 0, EtcdError(fmt.Sprintf("register broker %d", r.nodeID), err)
	}
	if r.claimed {
		ok, err := r.claim(cctx, r.nodeID, grant.ID)
		if err != nil || !ok {
			r.s.revoke(grant.ID)
		}
		if err != nil {
			return 0, err
		}
		if !ok {
			return 0, ErrNodeIDLost
		}
		return grant.ID, nil
	}
	data, _ := json.Marshal(r.b)
	if _, err := r.s.cli.Put(cctx, r.s.keys.Broker(r.nodeID), string(data), clientv3.WithLease(grant.ID)); err != nil {
		return 0, EtcdError(fmt.Sprintf("register broker %d", r.nodeID), err)
	}
	return grant.ID, nil
}

func (r *Registration) keepAlive(ctx context.Context, id clientv3.LeaseID) {
	defer close(r.done)
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		ch, err := r.s.cli.KeepAlive(ctx, id)
		if err == nil {
			for range ch {
				backoff = 200 * time.Millisecond
			}
		}
		if ctx.Err() != nil {
			return
		}
		// The lease is gone (expired during an outage) or etcd is unreachable: register anew.
		for ctx.Err() == nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			r.mu.Lock()
			nid, err := r.register(ctx)
			if err == nil {
				r.lease = nid
				id = nid
			} else if errors.Is(err, ErrNodeIDLost) {
				r.lostErr = fmt.Errorf("node %d: %w", r.nodeID, err)
			}
			r.mu.Unlock()
			if err == nil {
				r.s.log.Info("broker registration renewed", "node", r.nodeID)
				break
			}
			if errors.Is(err, ErrNodeIDLost) {
				r.s.log.Error("node id lost: another broker claimed it while the lease was lost", "node", r.nodeID)
				close(r.lost)
				return
			}
		}
	}
}

// Close stops the keep-alive and revokes the lease, removing the liveness key and, for a
// claimed id, the claim. Calling it again does nothing.
func (r *Registration) Close(ctx context.Context) error {
	r.cancel()
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.lostErr != nil {
		r.closed = true
		return nil
	}
	r.closed = true
	cctx, cancel := r.s.timeout(ctx)
	defer cancel()
	if _, err := r.s.cli.Revoke(cctx, r.lease); err != nil {
		return EtcdError(fmt.Sprintf("deregister broker %d", r.nodeID), err)
	}
	return nil
}

// revoke drops a lease that holds nothing yet, best effort (it expires anyway).
func (s *Store) revoke(id clientv3.LeaseID) {
	ctx, cancel := s.timeout(context.Background())
	defer cancel()
	_, _ = s.cli.Revoke(ctx, id)
}

// LiveBrokers lists the registered brokers, sorted by NodeID.
func (s *Store) LiveBrokers(ctx context.Context) ([]Broker, error) {
	cctx, cancel := s.timeout(ctx)
	defer cancel()
	resp, err := s.cli.Get(cctx, s.keys.Brokers(), clientv3.WithPrefix())
	if err != nil {
		return nil, EtcdError("list brokers", err)
	}
	return decodeBrokers(resp.Kvs, s), nil
}

// Members lists the registration values of the live brokers, sorted by NodeID.
func (s *Store) Members(ctx context.Context) ([]Member, error) {
	cctx, cancel := s.timeout(ctx)
	defer cancel()
	resp, err := s.cli.Get(cctx, s.keys.Brokers(), clientv3.WithPrefix())
	if err != nil {
		return nil, EtcdError("list brokers", err)
	}
	var out []Member
	for _, kv := range resp.Kvs {
		var m Member
		if err := json.Unmarshal(kv.Value, &m); err != nil {
			s.log.Error("ignoring undecodable broker registration", "key", string(kv.Key), "err", err)
			continue
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out, nil
}

func decodeBrokers(kvs []*mvccKV, s *Store) []Broker {
	var out []Broker
	for _, kv := range kvs {
		var b Broker
		if err := json.Unmarshal(kv.Value, &b); err != nil {
			s.log.Error("ignoring undecodable broker registration", "key", string(kv.Key), "err", err)
			continue
		}
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out
}
