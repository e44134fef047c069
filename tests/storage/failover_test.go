package storage_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kafscale/kafscale/broker/partition"
	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/kafscale/kafscale/tests/testenv"
)

// The whole chain: two brokers (metadata store + registration + controller + manager
// following the snapshot). Broker 1 leaves; the controller moves its partitions to broker 2
// with a new epoch; broker 2 claims them and continues the logs after every committed
// offset, and answers OffsetForLeaderEpoch for the old epoch.
func TestFailoverThroughController(t *testing.T) {
	e := newEnv(t)
	type broker struct {
		meta *metadata.Store
		reg  *metadata.Registration
		mgr  *partition.Manager
		stop context.CancelFunc
	}
	start := func(id int32) *broker {
		b := &broker{meta: newMetaStore(t, e)}
		b.reg = register(t, b.meta, id)
		objects, _ := e.store(t, nil)
		b.mgr = e.manager(t, id, objects, func(o *partition.Options) { o.FlushInterval = 50 * time.Millisecond })
		b.meta.OnSnapshot(b.mgr.Apply)
		ctx, cancel := context.WithCancel(context.Background())
		b.stop = cancel
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = b.meta.RunController(ctx, id, metadata.ControllerOptions{SessionTTL: 2 * time.Second})
		}()
		t.Cleanup(func() { cancel(); <-done })
		return b
	}
	b1, b2 := start(1), start(2)
	t.Cleanup(func() { _ = b2.reg.Close(context.Background()) })
	testenv.Eventually(t, 30*time.Second, func() error {
		if n := len(b1.meta.Snapshot().Brokers); n != 2 {
			return fmt.Errorf("%d brokers registered", n)
		}
		return nil
	})
	if err := b1.meta.CreateTopic(testenv.Context(t, 10*time.Second), "failover", 4, nil); err != nil {
		t.Fatal(err)
	}
	leaderOf := func(snap *metadata.Snapshot, p int32) int32 { return snap.Topic("failover").Partition(p).Leader }
	managers := map[int32]*partition.Manager{1: b1.mgr, 2: b2.mgr}
	want := map[int32][]string{}
	testenv.Eventually(t, 30*time.Second, func() error {
		snap := b2.meta.Snapshot()
		if snap.Topic("failover") == nil {
			return fmt.Errorf("topic not seen yet")
		}
		for p := int32(0); p < 4; p++ {
			if _, _, err := managers[leaderOf(snap, p)].Offsets(context.Background(), "failover", p); err != nil {
				return err
			}
		}
		return nil
	})
	snap := b1.meta.Snapshot()
	for p := int32(0); p < 4; p++ {
		v := fmt.Sprintf("p%d-first", p)
		mustAppend(t, managers[leaderOf(snap, p)], "failover", p, batch(v), true)
		want[p] = append(want[p], v)
	}

	// Broker 1 drains and leaves.
	if err := b1.mgr.Drain(testenv.Context(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := b1.reg.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	b1.stop()
	testenv.Eventually(t, 60*time.Second, func() error {
		snap := b2.meta.Snapshot()
		for p := int32(0); p < 4; p++ {
			if leaderOf(snap, p) != 2 {
				return fmt.Errorf("partition %d led by %d", p, leaderOf(snap, p))
			}
			if _, _, err := b2.mgr.Offsets(context.Background(), "failover", p); err != nil {
				return err
			}
		}
		return nil
	})
	for p := int32(0); p < 4; p++ {
		v := fmt.Sprintf("p%d-second", p)
		res := mustAppend(t, b2.mgr, "failover", p, batch(v), true)
		if res.BaseOffset != 1 {
			t.Fatalf("partition %d: offset %d after failover, want 1", p, res.BaseOffset)
		}
		want[p] = append(want[p], v)
		offsets, values := readAll(t, b2.mgr, "failover", p)
		assertDense(t, offsets)
		if fmt.Sprint(values) != fmt.Sprint(want[p]) {
			t.Fatalf("partition %d reads %q, want %q", p, values, want[p])
		}
		if sp := b2.meta.Snapshot().Topic("failover").Partition(p); sp.LeaderEpoch > 0 {
			if end, ep, _ := b2.mgr.EndOffsetForEpoch(context.Background(), "failover", p, sp.LeaderEpoch-1); end != 1 || ep != sp.LeaderEpoch-1 {
				t.Fatalf("partition %d: EndOffsetForEpoch(%d) = %d, %d; want 1", p, sp.LeaderEpoch-1, end, ep)
			}
		}
	}
}
