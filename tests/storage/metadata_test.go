package storage_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/kafscale/kafscale/tests/testenv"
)

func newMetaStore(t *testing.T, e *env) *metadata.Store {
	t.Helper()
	s, err := metadata.NewStore(context.Background(), e.cli, e.keys, metadata.StoreOptions{RequestTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func register(t *testing.T, s *metadata.Store, id int32) *metadata.Registration {
	t.Helper()
	r, err := s.Register(context.Background(), metadata.Broker{NodeID: id, Host: "127.0.0.1", Port: 9090 + id}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Topics are created with a fresh ID and partitions spread over the live brokers; bad
// requests get the Kafka error codes; deletion removes the topic and its partition state;
// another store sees every change through its watch.
func TestTopicAdmin(t *testing.T) {
	e := newEnv(t)
	s := newMetaStore(t, e)
	watcher := newMetaStore(t, e)
	for id := int32(1); id <= 3; id++ {
		r := register(t, s, id)
		t.Cleanup(func() { _ = r.Close(context.Background()) })
	}
	ctx := testenv.Context(t, 30*time.Second)
	if err := s.CreateTopic(ctx, "orders", 6, map[string]string{"retention.ms": "60000"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTopic(ctx, "audit", 1, nil); err != nil {
		t.Fatal(err)
	}
	orders := s.Snapshot().Topic("orders")
	if orders == nil || orders.ID == ([16]byte{}) || orders.Configs["retention.ms"] != "60000" {
		t.Fatalf("orders: %+v", orders)
	}
	perBroker := map[int32]int{}
	for _, p := range orders.Partitions {
		perBroker[p.Leader]++
	}
	if perBroker[1] != 2 || perBroker[2] != 2 || perBroker[3] != 2 {
		t.Fatalf("leaders not spread: %v", perBroker)
	}
	if a, o := s.Snapshot().Topic("audit"), s.Snapshot().Topic("orders"); a.ID == o.ID {
		t.Fatal("two topics share an ID")
	}
	cases := []struct {
		name  string
		parts int32
		cfg   map[string]string
		want  *kerr.Error
	}{
		{"orders", 1, nil, kerr.TopicAlreadyExists},
		{"bad/name", 1, nil, kerr.InvalidTopicException},
		{"zero", 0, nil, kerr.InvalidPartitions},
		{"cfg", 1, map[string]string{"cleanup.policy": "compact"}, kerr.InvalidConfig},
	}
	for _, c := range cases {
		if err := s.CreateTopic(ctx, c.name, c.parts, c.cfg); !isKerr(err, c.want) {
			t.Errorf("CreateTopic(%s, %d, %v) = %v, want %v", c.name, c.parts, c.cfg, err, c.want)
		}
	}
	if err := s.CreatePartitions(ctx, "audit", 3); err != nil {
		t.Fatal(err)
	}
	if err := s.CreatePartitions(ctx, "audit", 2); !isKerr(err, kerr.InvalidPartitions) {
		t.Fatalf("shrinking partitions: %v", err)
	}
	if _, err := e.cli.Put(ctx, e.keys.Partition("orders", 0), "{}"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTopic(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTopic(ctx, "orders"); !isKerr(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("deleting twice: %v", err)
	}
	if resp, _ := e.cli.Get(ctx, e.keys.Partition("orders", 0)); len(resp.Kvs) != 0 {
		t.Fatal("partition state of a deleted topic survived")
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		snap := watcher.Snapshot()
		if snap.Topic("orders") != nil || snap.Topic("audit") == nil || len(snap.Topic("audit").Partitions) != 3 {
			return fmt.Errorf("watcher sees %+v", snap.Topics)
		}
		return nil
	})
}

// The controller keeps Snapshot.Brokers equal to the live registrations and moves the
// partitions of a broker that goes away to live ones with a bumped leader epoch; when the
// elected controller stops, another takes over.
func TestControllerReassignsLeaders(t *testing.T) {
	e := newEnv(t)
	s1, s2 := newMetaStore(t, e), newMetaStore(t, e)
	r1, r2 := register(t, s1, 1), register(t, s2, 2)
	t.Cleanup(func() { _ = r1.Close(context.Background()) })
	ctx1, stop1 := context.WithCancel(context.Background())
	ctx2, stop2 := context.WithCancel(context.Background())
	t.Cleanup(stop1)
	t.Cleanup(stop2)
	done1 := make(chan struct{})
	go func() {
		defer close(done1)
		_ = s1.RunController(ctx1, 1, metadata.ControllerOptions{SessionTTL: 2 * time.Second})
	}()
	testenv.Eventually(t, 30*time.Second, func() error {
		if snap := s1.Snapshot(); snap.ControllerID != 1 || len(snap.Brokers) != 2 || snap.ClusterID == "" {
			return fmt.Errorf("snapshot %+v", snap)
		}
		return nil
	})
	go func() { _ = s2.RunController(ctx2, 2, metadata.ControllerOptions{SessionTTL: 2 * time.Second}) }()
	if err := s1.CreateTopic(testenv.Context(t, 10*time.Second), "t", 4, nil); err != nil {
		t.Fatal(err)
	}
	// Broker 2 leaves: its partitions move to broker 1 with epoch 1.
	if err := r2.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		snap := s1.Snapshot()
		if len(snap.Brokers) != 1 {
			return fmt.Errorf("brokers %+v", snap.Brokers)
		}
		for _, p := range snap.Topic("t").Partitions {
			if p.Leader != 1 {
				return fmt.Errorf("partition %d led by %d", p.ID, p.Leader)
			}
		}
		return nil
	})
	moved := 0
	for _, p := range s1.Snapshot().Topic("t").Partitions {
		moved += int(p.LeaderEpoch)
	}
	if moved != 2 {
		t.Fatalf("expected the 2 partitions of broker 2 to move with epoch 1, epochs sum to %d", moved)
	}
	// Controller 1 stops; controller 2 (still campaigning) takes over and records itself.
	stop1()
	<-done1
	testenv.Eventually(t, 30*time.Second, func() error {
		if id := s2.Snapshot().ControllerID; id != 2 {
			return fmt.Errorf("controller %d", id)
		}
		return nil
	})
	// A broker registering again is added back.
	r3 := register(t, s2, 3)
	t.Cleanup(func() { _ = r3.Close(context.Background()) })
	testenv.Eventually(t, 30*time.Second, func() error {
		if b := s2.Snapshot().Broker(3); b == nil || b.Port != 9093 {
			return fmt.Errorf("broker 3 missing: %+v", s2.Snapshot().Brokers)
		}
		return nil
	})
}

// Update is a compare-and-swap: concurrent writers never lose each other's changes.
func TestSnapshotUpdateIsCompareAndSwap(t *testing.T) {
	e := newEnv(t)
	stores := []*metadata.Store{newMetaStore(t, e), newMetaStore(t, e), newMetaStore(t, e)}
	const each = 10
	errs := make(chan error, len(stores)*each)
	for i, s := range stores {
		go func(i int, s *metadata.Store) {
			for j := 0; j < each; j++ {
				_, err := s.Update(context.Background(), func(snap *metadata.Snapshot) error {
					snap.Brokers = append(snap.Brokers, metadata.Broker{NodeID: int32(100*i + j)})
					return nil
				})
				errs <- err
			}
		}(i, s)
	}
	for range len(stores) * each {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := len(stores[0].Snapshot().Brokers); n != len(stores)*each {
			return fmt.Errorf("%d brokers, want %d", n, len(stores)*each)
		}
		return nil
	})
}
