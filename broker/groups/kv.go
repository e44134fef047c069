package groups

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// kv is the part of etcd the coordinator uses; unit tests substitute an in-memory one.
type kv interface {
	// get returns the pairs at key, or under it with prefix; keysOnly leaves values nil.
	get(ctx context.Context, key string, prefix, keysOnly bool) ([]pair, error)
	// txn applies ops atomically if fenceKey's mod revision (0: absent) equals fenceRev; it
	// returns whether it did, and the store revision after the write.
	txn(ctx context.Context, fenceKey string, fenceRev int64, ops []op) (ok bool, rev int64, err error)
}

type pair struct {
	key, value string
	modRev     int64
}

// op is a put (value non-nil) or a delete of one key.
type op struct {
	key   string
	value *string
}

func putOp(key, value string) op { return op{key: key, value: &value} }
func deleteOp(key string) op     { return op{key: key} }

type etcdKV struct{ cli *clientv3.Client }

func (e etcdKV) get(ctx context.Context, key string, prefix, keysOnly bool) ([]pair, error) {
	var opts []clientv3.OpOption
	if prefix {
		opts = append(opts, clientv3.WithPrefix())
	}
	if keysOnly {
		opts = append(opts, clientv3.WithKeysOnly())
	}
	resp, err := e.cli.Get(ctx, key, opts...)
	if err != nil {
		return nil, err
	}
	out := make([]pair, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		out[i] = pair{key: string(kv.Key), value: string(kv.Value), modRev: kv.ModRevision}
	}
	return out, nil
}

func (e etcdKV) txn(ctx context.Context, fenceKey string, fenceRev int64, ops []op) (bool, int64, error) {
	eops := make([]clientv3.Op, len(ops))
	for i, o := range ops {
		if o.value != nil {
			eops[i] = clientv3.OpPut(o.key, *o.value)
		} else {
			eops[i] = clientv3.OpDelete(o.key)
		}
	}
	resp, err := e.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(fenceKey), "=", fenceRev)).Then(eops...).Commit()
	if err != nil {
		return false, 0, err
	}
	return resp.Succeeded, resp.Header.Revision, nil
}
