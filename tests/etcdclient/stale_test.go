// Package etcdclient checks internal/etcdclient against a real etcd: a client whose first
// connection reached something that is not etcd (as one made to a Kubernetes Service before
// kube-proxy routes it) gets to etcd once the address is routed.
package etcdclient

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kafscale/kafscale/internal/etcdclient"
	"github.com/kafscale/kafscale/tests/testenv"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// notEtcd serves HTTP/2 without TLS (what gRPC speaks) and answers every request 404.
func notEtcd(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.NotFound(w, nil) }),
		Protocols: new(http.Protocols),
	}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// switchingAddr is a Service address in the window before kube-proxy programs it: the first
// `wrong` connections reach the 404 server, every later one reaches etcd.
func switchingAddr(t *testing.T, wrong int64, notEtcdAddr, etcdAddr string) (addr string, dials *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	dials = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			to := etcdAddr
			if dials.Add(1) <= wrong {
				to = notEtcdAddr
			}
			go relay(c, to)
		}
	}()
	return ln.Addr().String(), dials
}

func relay(c net.Conn, to string) {
	defer c.Close()
	b, err := net.Dial("tcp", to)
	if err != nil {
		return
	}
	defer b.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(b, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, b); done <- struct{}{} }()
	<-done
}

// TestWrongPeerRedialled: the first connection answers 404. Without the package the client
// keeps it and every call fails (shown with clientv3.New directly, so the test reproduces the
// fault); with it, the call that saw the 404 fails and a later one reaches etcd through a new
// connection. A watch made on the wrong connection is also recovered by watching again.
func TestWrongPeerRedialled(t *testing.T) {
	e := testenv.StartEtcd(t)
	etcdAddr := strings.TrimPrefix(e.Endpoints()[0], "http://")
	bad := notEtcd(t)
	if _, err := e.Client().Put(context.Background(), "/k", "v"); err != nil {
		t.Fatal(err)
	}

	t.Run("plain client stays stuck", func(t *testing.T) {
		addr, dials := switchingAddr(t, 1, bad, etcdAddr)
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + addr}, DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		for i := range 5 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := cli.Get(ctx, "/k")
			cancel()
			if !etcdclient.NotEtcd(err) {
				t.Fatalf("call %d: want the 404 answer of the first connection, got %v (the fault no longer reproduces)", i, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if n := dials.Load(); n != 1 {
			t.Fatalf("plain client dialled %d times, want 1", n)
		}
	})

	t.Run("unary", func(t *testing.T) {
		addr, dials := switchingAddr(t, 1, bad, etcdAddr)
		cli, err := etcdclient.New(clientv3.Config{Endpoints: []string{"http://" + addr}, DialTimeout: 5 * time.Second}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		var errs []error
		deadline := time.Now().Add(2 * time.Minute)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			resp, err := cli.Get(ctx, "/k")
			cancel()
			if err == nil {
				if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
					t.Fatalf("Get /k: %v", resp.Kvs)
				}
				break
			}
			errs = append(errs, err)
			if time.Now().After(deadline) {
				t.Fatalf("no answer from etcd after %d calls: %v", len(errs), errors.Join(errs...))
			}
			time.Sleep(100 * time.Millisecond)
		}
		if len(errs) == 0 || !etcdclient.NotEtcd(errs[0]) {
			t.Fatalf("the first call should have met the 404 server: %v", errs)
		}
		if n := dials.Load(); n < 2 {
			t.Fatalf("dialled %d times, want a second connection", n)
		}
	})

	t.Run("watch", func(t *testing.T) {
		addr, _ := switchingAddr(t, 1, bad, etcdAddr)
		cli, err := etcdclient.New(clientv3.Config{Endpoints: []string{"http://" + addr}, DialTimeout: 5 * time.Second}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		deadline := time.Now().Add(2 * time.Minute)
		var watchErrs []error
		for time.Now().Before(deadline) {
			ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(context.Background()))
			wc := cli.Watch(ctx, "/w")
			// A Put from another client once the watch is (maybe) established.
			go func() {
				time.Sleep(time.Second)
				_, _ = e.Client().Put(context.Background(), "/w", "seen")
			}()
			select {
			case resp, ok := <-wc:
				cancel()
				if ok && resp.Err() == nil && len(resp.Events) > 0 {
					if got := string(resp.Events[0].Kv.Value); got != "seen" {
						t.Fatalf("watch saw %q", got)
					}
					if len(watchErrs) == 0 || !etcdclient.NotEtcd(watchErrs[0]) {
						t.Fatalf("the first watch should have met the 404 server: %v", watchErrs)
					}
					return
				}
				if ok {
					watchErrs = append(watchErrs, resp.Err())
				} else {
					watchErrs = append(watchErrs, errors.New("watch channel closed"))
				}
			case <-time.After(30 * time.Second):
				cancel()
				watchErrs = append(watchErrs, errors.New("no watch answer in 30 s"))
			}
		}
		t.Fatalf("the watch never reached etcd: %v", errors.Join(watchErrs...))
	})
}
