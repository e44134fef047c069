package metadata

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ProducerIDBlock is how many producer ids a broker takes from the cluster counter at once,
// so most InitProducerId requests need no etcd round trip.
const ProducerIDBlock = 1000

// producerIDBlock is the part of a block not yet handed out.
type producerIDBlock struct {
	mu        sync.Mutex
	next, end int64
}

// AllocateProducerID returns a producer id unique in the cluster: ids come in blocks from
// the counter at Keys.ProducerIDs, advanced by compare-and-swap. An etcd failure is
// kerr.RequestTimedOut (EtcdError).
func (s *Store) AllocateProducerID(ctx context.Context) (int64, error) {
	b := &s.pids
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.next < b.end {
		id := b.next
		b.next++
		return id, nil
	}
	key := s.keys.ProducerIDs()
	for {
		tctx, cancel := s.timeout(ctx)
		resp, err := s.cli.Get(tctx, key)
		cancel()
		if err != nil {
			return 0, EtcdError("read the producer id counter", err)
		}
		var first int64
		cmp := clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
		if len(resp.Kvs) > 0 {
			first, err = strconv.ParseInt(string(resp.Kvs[0].Value), 10, 64)
			if err != nil || first < 0 {
				return 0, fmt.Errorf("producer id counter %s holds %q, not an id", key, resp.Kvs[0].Value)
			}
			cmp = clientv3.Compare(clientv3.ModRevision(key), "=", resp.Kvs[0].ModRevision)
		}
		end := first + ProducerIDBlock
		tctx, cancel = s.timeout(ctx)
		txn, err := s.cli.Txn(tctx).If(cmp).Then(clientv3.OpPut(key, strconv.FormatInt(end, 10))).Commit()
		cancel()
		if err != nil {
			// The block may have been taken; it is lost then, never handed out twice.
			return 0, EtcdError("advance the producer id counter", err)
		}
		if txn.Succeeded {
			b.next, b.end = first+1, end
			return first, nil
		}
		if err := ctx.Err(); err != nil {
			return 0, EtcdError("advance the producer id counter", err)
		}
	}
}
