package broker

import (
	"context"
	"encoding/json"
	"net"
	"strconv"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	meta "github.com/kafscale/kafscale/internal/metadata"
	"github.com/kafscale/kafscale/tests/brokertest"
	"github.com/kafscale/kafscale/tests/testenv"
)

// The broker binary's default cluster, where its etcd keys live.
var defaultKeys = meta.Keys{Namespace: "default", Cluster: "kafscale"}

// TestAutoNodeIDs: three brokers started at once with KAFSCALE_BROKER_ID=auto claim three
// distinct ids (0, 1, 2: the lowest free), seen the same in etcd and in Kafka Metadata;
// produce and consume work across them. After one is killed (SIGKILL: no deregistration)
// its id frees when its 2 s lease expires, and a new auto broker takes it.
func TestAutoNodeIDs(t *testing.T) {
	be := startBackend(t)
	auto := brokertest.Options{Auto: true, Etcd: be.etcd, S3: be.s3}
	brokers := brokertest.StartAll(t, auto, auto, auto)
	ctx := testContext(t, 4*time.Minute)
	cli := be.etcd.Client()

	ids := etcdIDs(t, ctx, cli, brokers)
	seen := map[int32]bool{}
	for _, b := range brokers {
		seen[ids[b.Addr]] = true
	}
	if len(seen) != 3 || !seen[0] || !seen[1] || !seen[2] {
		t.Fatalf("auto ids by address %v, want 0, 1 and 2 once each", ids)
	}
	seed := brokers[0].Addr
	checkMetadataIDs(t, ctx, seed, ids)

	createTopic(t, seed, "auto-ids", 6)
	first := makeRecords("auto", 1500)
	produceFranz(t, ctx, seed, "auto-ids", first)
	checkReadBack(t, first, consumeFranz(t, ctx, seed, "auto-ids", len(first)))

	// Kill the broker holding id 1: its keys stay until the lease expires, then id 1 is the
	// lowest free one again.
	var victim *brokertest.Broker
	for _, b := range brokers {
		if ids[b.Addr] == 1 {
			victim = b
		}
	}
	victim.Kill()
	testenv.WaitFor(t, ctx, "the killed broker's keys to expire with its lease", func() bool {
		for _, k := range []string{defaultKeys.ID(1), defaultKeys.Broker(1)} {
			resp, err := cli.Get(ctx, k)
			if err != nil || len(resp.Kvs) != 0 {
				return false
			}
		}
		return true
	})
	if victim == brokers[0] {
		seed = brokers[2].Addr
	}
	replacement := brokertest.Start(t, auto)
	brokers = []*brokertest.Broker{brokers[0], brokers[1], brokers[2], replacement}
	live := []*brokertest.Broker{}
	for _, b := range brokers {
		if b != victim {
			live = append(live, b)
		}
	}
	ids = etcdIDs(t, ctx, cli, live)
	if ids[replacement.Addr] != 1 {
		t.Fatalf("the new auto broker claimed %d, want the freed id 1 (ids %v)", ids[replacement.Addr], ids)
	}
	checkMetadataIDs(t, ctx, seed, ids)

	second := makeRecords("after-kill", 500)
	produceFranz(t, ctx, seed, "auto-ids", second)
	checkReadBack(t, append(first, second...), consumeFranz(t, ctx, seed, "auto-ids", len(first)+len(second)))
}

// etcdIDs waits until every broker has both its claim ids/<id> and its liveness key
// brokers/<id>, under one lease, and returns the ids by client address.
func etcdIDs(t *testing.T, ctx context.Context, cli *clientv3.Client, brokers []*brokertest.Broker) map[string]int32 {
	t.Helper()
	var ids map[string]int32
	testenv.WaitFor(t, ctx, "every broker registered in etcd", func() bool {
		resp, err := cli.Get(ctx, defaultKeys.Brokers(), clientv3.WithPrefix())
		if err != nil {
			return false
		}
		ids = map[string]int32{}
		for _, kv := range resp.Kvs {
			var b meta.Broker
			if err := json.Unmarshal(kv.Value, &b); err != nil {
				t.Fatalf("%s: %v", kv.Key, err)
			}
			if string(kv.Key) != defaultKeys.Broker(b.NodeID) {
				t.Fatalf("key %s holds node %d", kv.Key, b.NodeID)
			}
			claim, err := cli.Get(ctx, defaultKeys.ID(b.NodeID))
			if err != nil || len(claim.Kvs) != 1 {
				return false
			}
			if claim.Kvs[0].Lease != kv.Lease || kv.Lease == 0 {
				t.Fatalf("node %d: claim lease %x, liveness lease %x: want the same lease", b.NodeID, claim.Kvs[0].Lease, kv.Lease)
			}
			ids[net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))] = b.NodeID
		}
		for _, b := range brokers {
			if _, ok := ids[b.Addr]; !ok {
				return false
			}
		}
		return len(ids) == len(brokers)
	})
	return ids
}

// checkMetadataIDs waits until Kafka Metadata lists exactly the brokers of ids (address and
// node id).
func checkMetadataIDs(t *testing.T, ctx context.Context, seed string, ids map[string]int32) {
	t.Helper()
	var got map[string]int32
	testenv.WaitFor(t, ctx, "Metadata to list the claimed ids", func() bool {
		got = map[string]int32{}
		for _, b := range metadata(t, ctx, seed, "").Brokers {
			got[net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))] = b.NodeID
		}
		if len(got) != len(ids) {
			return false
		}
		for addr, id := range ids {
			if got[addr] != id {
				return false
			}
		}
		return true
	})
}
