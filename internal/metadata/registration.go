package metadata

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

type mvccKV = mvccpb.KeyValue

// Registration keeps a broker's liveness key (Keys.Broker(id)) alive under an etcd lease,
// re-creating it when the lease is lost (an etcd outage longer than the TTL).
type Registration struct {
	s      *Store
	b      Broker
	ttl    time.Duration
	cancel context.CancelFunc
	done   chan struct{}
	lease  chan clientv3.LeaseID // the current lease, for Close
}

// Register writes the broker's advertised address under Keys.Broker(b.NodeID) with a
// lease of ttl (at least 2 s; 10 s when zero) and keeps it alive until Close.
func (s *Store) Register(ctx context.Context, b Broker, ttl time.Duration) (*Registration, error) {
	if ttl <= 0 {
		ttl = 10 * time.Second
	}
	ttl = max(ttl, 2*time.Second)
	r := &Registration{s: s, b: b, ttl: ttl, done: make(chan struct{}), lease: make(chan clientv3.LeaseID, 1)}
	id, err := r.register(ctx)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.lease <- id
	go r.keepAlive(rctx, id)
	return r, nil
}

func (r *Registration) register(ctx context.Context) (clientv3.LeaseID, error) {
	cctx, cancel := r.s.timeout(ctx)
	defer cancel()
	grant, err := r.s.cli.Grant(cctx, int64((r.ttl+time.Second-1)/time.Second))
	if err != nil {
		return 0, EtcdError(fmt.Sprintf("register broker %d", r.b.NodeID), err)
	}
	data, _ := json.Marshal(r.b)
	if _, err := r.s.cli.Put(cctx, r.s.keys.Broker(r.b.NodeID), string(data), clientv3.WithLease(grant.ID)); err != nil {
		return 0, EtcdError(fmt.Sprintf("register broker %d", r.b.NodeID), err)
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
			nid, err := r.register(ctx)
			if err == nil {
				<-r.lease
				r.lease <- nid
				id = nid
				r.s.log.Info("broker registration renewed", "node", r.b.NodeID)
				break
			}
		}
	}
}

// Close stops the keep-alive and revokes the lease, removing the liveness key.
func (r *Registration) Close(ctx context.Context) error {
	r.cancel()
	<-r.done
	id := <-r.lease
	cctx, cancel := r.s.timeout(ctx)
	defer cancel()
	if _, err := r.s.cli.Revoke(cctx, id); err != nil {
		return EtcdError(fmt.Sprintf("deregister broker %d", r.b.NodeID), err)
	}
	return nil
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
