package operator_test

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/client-go/rest"

	"github.com/kafscale/kafscale/operator/leader"
)

// leaseReplica is a replica with no etcd endpoints at all (the chart's default), so it
// elects through a Kubernetes Lease.
func (e *env) leaseReplica(t *testing.T, id, key string) *operator {
	cfg := e.operatorConfig(t, id, key)
	cfg.EtcdEndpoints, cfg.LeaderEtcdEndpoints = nil, nil
	return e.startOperator(t, cfg)
}

// leaseHolder is the pod name holding the Lease of key ("" when none).
func leaseHolder(t *testing.T, e *env, key string) string {
	t.Helper()
	var l coordinationv1.Lease
	if err := get(t, e.c, leader.LeaseName(key), &l); err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	id, _, _ := strings.Cut(*l.Spec.HolderIdentity, "_")
	return id
}

// TestLeaderLease: without etcd endpoints the replicas elect through a coordination.k8s.io
// Lease named after the leader key: one leads and reconciles (a cluster whose own
// spec.etcd.endpoints hold its metadata); stopped, it releases the Lease and the other takes
// over and reconciles; the built binary, SIGKILLed, is replaced once the Lease expires. A
// replica on another key leads on its own (its own Lease). Takeover times are logged.
func TestLeaderLease(t *testing.T) {
	e := startEnv(t)
	c := e.c
	create(t, c, credentialsSecret("s3-creds", e.s3.AccessKey, e.s3.SecretKey))
	key := "/test/" + randomKey() + "/leader"

	a := e.leaseReplica(t, "op-a", key)
	b := e.leaseReplica(t, "op-b", key)
	var first, second *operator
	eventually(t, "a leader", func() error {
		switch {
		case elected(a):
			first, second = a, b
		case elected(b):
			first, second = b, a
		default:
			return fmt.Errorf("no leader yet")
		}
		return nil
	})
	if elected(second) {
		t.Fatal("both replicas lead")
	}
	if h := leaseHolder(t, e, key); h != first.cfg.PodName {
		t.Errorf("Lease %s held by %q, want %s", leader.LeaseName(key), h, first.cfg.PodName)
	}
	t.Logf("%s leads through Lease %s/%s, %s follows", first.cfg.PodName, namespace, leader.LeaseName(key), second.cfg.PodName)

	otherKey := "/test/" + randomKey() + "/leader"
	other := e.leaseReplica(t, "op-other-key", otherKey)
	eventually(t, "the replica on another key leads", func() error {
		if !elected(other) {
			return fmt.Errorf("not elected")
		}
		return nil
	})
	if h := leaseHolder(t, e, otherKey); h != "op-other-key" || leader.LeaseName(otherKey) == leader.LeaseName(key) {
		t.Errorf("other key: Lease %s held by %q", leader.LeaseName(otherKey), h)
	}
	other.stop(t)

	kc := e.cluster("lease", "s3-creds")
	kc.Spec.Etcd.Endpoints = e.etcd.Endpoints()
	create(t, c, kc)
	waitReplicas(t, c, "lease", 2)
	if elected(second) {
		t.Fatal("the follower leads")
	}

	stoppedAt := time.Now()
	first.stop(t)
	eventually(t, "takeover after a graceful stop", func() error {
		if !elected(second) {
			return fmt.Errorf("%s not elected", second.cfg.PodName)
		}
		return nil
	})
	at := <-second.elected
	t.Logf("graceful stop (Lease released) at %s: %s led %v after %s stopped", stoppedAt.UTC().Format("15:04:05.000"), second.cfg.PodName, at.Sub(stoppedAt), first.cfg.PodName)
	waitReplicas(t, c, "lease", 4)

	// The built binary, killed without a chance to release the Lease.
	bin := buildOperator(t)
	kubeconfig := writeKubeconfig(t, e)
	p1 := startBinary(t, e, bin, kubeconfig, "proc-1", key, true)
	second.stop(t)
	eventually(t, "proc-1 leads", func() error { return p1.leader("1") })
	p2 := startBinary(t, e, bin, kubeconfig, "proc-2", key, true)
	eventually(t, "proc-2 follows", func() error { return p2.leader("0") })
	waitReplicas(t, c, "lease", 5)
	if h := leaseHolder(t, e, key); h != "proc-1" {
		t.Errorf("Lease held by %q, want proc-1", h)
	}

	killedAt := time.Now()
	if err := p1.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = p1.cmd.Wait()
	eventually(t, "proc-2 takes over", func() error { return p2.leader("1") })
	lease, _, _ := leader.LeaseTimings(4 * time.Second)
	t.Logf("SIGKILL (lease duration %s): proc-2 led %v after proc-1 was killed", lease, time.Since(killedAt).Round(time.Millisecond))
	waitReplicas(t, c, "lease", 1)
	if h := leaseHolder(t, e, key); h != "proc-2" {
		t.Errorf("Lease held by %q, want proc-2", h)
	}
}

// TestLeaderLeaseLost: the leader's connection to the API server is cut; it cannot renew the
// Lease, stops with leader.ErrLost once the renew deadline passes (it must not go on
// reconciling), and the other replica takes over when the Lease expires and reconciles.
// Times are logged, not asserted.
func TestLeaderLeaseLost(t *testing.T) {
	e := startEnv(t)
	c := e.c
	create(t, c, credentialsSecret("s3-creds", e.s3.AccessKey, e.s3.SecretKey))
	key := "/test/" + randomKey() + "/leader"
	api, err := url.Parse(e.kube.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startCutProxy(t, api.Host)

	aCfg := e.operatorConfig(t, "op-a", key)
	aCfg.EtcdEndpoints, aCfg.LeaderEtcdEndpoints = nil, nil
	viaProxy := rest.CopyConfig(e.kube.Config)
	viaProxy.Host = "https://" + proxy.ln.Addr().String()
	a := e.startOperatorOn(t, aCfg, viaProxy)
	eventually(t, "op-a leads", func() error {
		if !elected(a) {
			return fmt.Errorf("not elected")
		}
		return nil
	})
	b := e.leaseReplica(t, "op-b", key)
	kc := e.cluster("leaselost", "s3-creds")
	kc.Spec.Etcd.Endpoints = e.etcd.Endpoints()
	create(t, c, kc)
	waitReplicas(t, c, "leaselost", 2)
	if elected(b) {
		t.Fatal("both replicas lead")
	}

	var stoppedAt time.Time
	cutAt := time.Now()
	proxy.Cut()
	select {
	case err := <-a.done:
		if !errors.Is(err, leader.ErrLost) {
			t.Fatalf("op-a stopped with %v, want leader.ErrLost", err)
		}
		stoppedAt = time.Now()
		t.Logf("op-a stopped %v after losing the API server: %v", stoppedAt.Sub(cutAt).Round(time.Millisecond), err)
		a.cancel()
		a.cancel = nil
	case <-time.After(time.Minute):
		t.Fatal("op-a still runs a minute after losing the API server")
	}
	eventually(t, "op-b takes over", func() error {
		if !elected(b) {
			return fmt.Errorf("not elected")
		}
		return nil
	})
	at := <-b.elected
	lease, renew, _ := leader.LeaseTimings(aCfg.LeaderTTL)
	t.Logf("lost API server (renew deadline %s, lease %s): op-b led %v after the cut (op-a had stopped by then: %v)", renew, lease, at.Sub(cutAt).Round(time.Millisecond), stoppedAt.Before(at))
	waitReplicas(t, c, "leaselost", 3)
}
