package storage_test

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/kafscale/kafscale/tests/testenv"
)

// KAFSCALE_BROKER_ID=auto: brokers claiming at once get distinct ids, the lowest free first;
// ids held by explicitly numbered brokers are skipped; Close frees the id for the next claim.
func TestClaimNodeIDConcurrent(t *testing.T) {
	e := newEnv(t)
	explicit := register(t, newMetaStore(t, e), 1)
	t.Cleanup(func() { _ = explicit.Close(context.Background()) })

	const n = 6
	regs := make([]*metadata.Registration, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		s := newMetaStore(t, e) // one store (one broker) each
		wg.Add(1)
		go func() {
			defer wg.Done()
			regs[i], errs[i] = s.ClaimNodeID(testenv.Context(t, 20*time.Second), 2*time.Second)
		}()
	}
	wg.Wait()
	var ids []int
	for i, r := range regs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		t.Cleanup(func() { _ = r.Close(context.Background()) })
		ids = append(ids, int(r.NodeID()))
	}
	sort.Ints(ids)
	want := []int{0, 2, 3, 4, 5, 6}
	for i := range want {
		if ids[i] != want[i] {
			t.Fatalf("claimed ids %v, want %v (1 is held by an explicit broker)", ids, want)
		}
	}

	// Publishing makes the broker live under its claimed id.
	s := newMetaStore(t, e)
	if err := regs[0].Publish(testenv.Context(t, 5*time.Second), metadata.Broker{Host: "h", Port: 9}); err != nil {
		t.Fatal(err)
	}
	live, err := s.LiveBrokers(testenv.Context(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != 2 || live[1].NodeID != regs[0].NodeID() && live[0].NodeID != regs[0].NodeID() {
		t.Fatalf("live brokers %+v", live)
	}

	// Close frees the claim and the liveness key at once; the next claim takes the id.
	freed := regs[0].NodeID()
	if err := regs[0].Close(testenv.Context(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{e.keys.ID(freed), e.keys.Broker(freed)} {
		if resp, err := e.cli.Get(testenv.Context(t, 5*time.Second), k); err != nil || len(resp.Kvs) != 0 {
			t.Fatalf("%s after Close: %v %v", k, resp, err)
		}
	}
	next, err := s.ClaimNodeID(testenv.Context(t, 5*time.Second), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close(context.Background())
	if next.NodeID() != freed {
		t.Fatalf("next claim got %d, want the freed %d", next.NodeID(), freed)
	}
}

// A claimed id survives a lost lease when nobody took it meanwhile (the claim and the
// liveness key are re-created under a new lease), and is reported lost when another broker
// claimed it in between.
func TestClaimedNodeIDAfterLeaseLoss(t *testing.T) {
	e := newEnv(t)
	s := newMetaStore(t, e)
	ctx := testenv.Context(t, 30*time.Second)
	r, err := s.ClaimNodeID(ctx, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	if err := r.Publish(ctx, metadata.Broker{Host: "h", Port: 9}); err != nil {
		t.Fatal(err)
	}
	id := r.NodeID()
	revoke := func() {
		resp, err := e.cli.Get(ctx, e.keys.ID(id))
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("claim key: %v %v", resp, err)
		}
		if _, err := e.cli.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
			t.Fatal(err)
		}
	}

	// Lease lost, id still free: renewed under a new lease, both keys back.
	revoke()
	deadline := time.Now().Add(10 * time.Second)
	for {
		a, _ := e.cli.Get(ctx, e.keys.ID(id))
		b, _ := e.cli.Get(ctx, e.keys.Broker(id))
		if a != nil && b != nil && len(a.Kvs) == 1 && len(b.Kvs) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("registration not renewed after the lease was revoked")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Lease lost and the id claimed by someone else first: Lost.
	revoke()
	if _, err := e.cli.Put(ctx, e.keys.ID(id), ""); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("Lost not closed after another broker took the id")
	}
	if !errors.Is(r.Err(), metadata.ErrNodeIDLost) {
		t.Fatalf("Err() = %v", r.Err())
	}
	if err := r.Close(ctx); err != nil {
		t.Fatalf("Close after Lost: %v", err)
	}
	// The other broker's claim is untouched.
	if resp, err := e.cli.Get(ctx, e.keys.ID(id)); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("other claim: %v %v", resp, err)
	}
}
