package operator_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/kafscale/kafscale/operator/leader"
)

// cutProxy forwards loopback TCP to an etcd endpoint until Cut drops every connection and
// refuses new ones: the replica behind it loses etcd while the others keep it.
type cutProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln}
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	t.Cleanup(p.Cut)
	return p
}

func (p *cutProxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *cutProxy) Cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestLeaderLosesEtcd: the leader's connection to the lock's etcd is cut; its session
// expires, its operator stops with leader.ErrLost (it must not go on reconciling), and the
// other replica takes over and reconciles. The takeover time is logged, not asserted.
func TestLeaderLosesEtcd(t *testing.T) {
	e := startEnv(t)
	c := e.c
	create(t, c, credentialsSecret("s3-creds", e.s3.AccessKey, e.s3.SecretKey))
	key := "/test/" + randomKey() + "/leader"
	proxy := startCutProxy(t, e.etcd.Endpoints()[0][len("http://"):])

	aCfg := e.operatorConfig(t, "op-a", key)
	aCfg.LeaderEtcdEndpoints = []string{proxy.URL()}
	a := e.startOperator(t, aCfg)
	eventually(t, "op-a leads", func() error {
		if !elected(a) {
			return fmt.Errorf("not elected")
		}
		return nil
	})
	b := e.startOperator(t, e.operatorConfig(t, "op-b", key))
	create(t, c, e.cluster("loss", "s3-creds"))
	waitReplicas(t, c, "loss", 2)
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
		t.Logf("op-a stopped %v after losing etcd: %v", stoppedAt.Sub(cutAt), err)
		a.cancel()
		a.cancel = nil
	case <-time.After(time.Minute):
		t.Fatal("op-a still runs a minute after losing etcd")
	}
	eventually(t, "op-b takes over", func() error {
		if !elected(b) {
			return fmt.Errorf("not elected")
		}
		return nil
	})
	at := <-b.elected
	t.Logf("lost etcd (session TTL %s): op-b led %v after the cut (op-a had stopped by then: %v)", aCfg.LeaderTTL, at.Sub(cutAt), stoppedAt.Before(at))
	waitReplicas(t, c, "loss", 3)
}
