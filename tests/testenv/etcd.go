package testenv

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Etcd is a real single-member etcd server on loopback.
type Etcd struct {
	t        testing.TB
	proc     *process
	endpoint string
	// user and password, once authentication is on (SetCredentials).
	user, password string
}

// StartEtcd starts an etcd server with a fresh data directory on free loopback ports. It is
// stopped when the test ends.
func StartEtcd(t testing.TB) *Etcd {
	t.Helper()
	bin := Binary(t, "etcd")
	dir := t.TempDir()
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", FreePort(t))
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", FreePort(t))
	e := &Etcd{
		t:        t,
		endpoint: clientURL,
		proc: &process{
			name: "etcd",
			path: bin,
			args: []string{
				"--name", "testenv",
				"--data-dir", filepath.Join(dir, "data"),
				"--listen-client-urls", clientURL,
				"--advertise-client-urls", clientURL,
				"--listen-peer-urls", peerURL,
				"--initial-advertise-peer-urls", peerURL,
				"--initial-cluster", "testenv=" + peerURL,
				"--initial-cluster-state", "new",
				"--log-level", "warn",
				"--quota-backend-bytes", itoa(1 << 30),
			},
			logPath: filepath.Join(dir, "etcd.log"),
		},
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("etcd log tail:\n%s", e.proc.logTail())
		}
		e.proc.stop(5 * time.Second)
	})
	e.Start()
	return e
}

// Endpoints returns the client URLs.
func (e *Etcd) Endpoints() []string { return []string{e.endpoint} }

// Start (re)starts the server on the same ports and data directory and waits until it
// answers. Tests use Stop and Start to simulate an etcd outage.
func (e *Etcd) Start() {
	e.t.Helper()
	if err := e.proc.start(); err != nil {
		e.t.Fatalf("testenv: %v", err)
	}
	cli := e.newClient()
	defer cli.Close()
	err := e.proc.waitFor(30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := cli.Status(ctx, e.endpoint)
		return err
	})
	if err != nil {
		e.t.Fatalf("testenv: %v", err)
	}
}

// Stop stops the server (gracefully, then by force), keeping its data for a later Start.
func (e *Etcd) Stop() { e.proc.stop(5 * time.Second) }

// Client returns an etcd client for the server, closed when the test ends.
func (e *Etcd) Client() *clientv3.Client {
	e.t.Helper()
	cli := e.newClient()
	e.t.Cleanup(func() { cli.Close() })
	return cli
}

// SetCredentials makes the clients Start and Client make log in as user: for tests that
// turn etcd's authentication on.
func (e *Etcd) SetCredentials(user, password string) { e.user, e.password = user, password }

func (e *Etcd) newClient() *clientv3.Client {
	cli, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints(), DialTimeout: 5 * time.Second, Username: e.user, Password: e.password})
	if err != nil {
		e.t.Fatalf("testenv: etcd client: %v", err)
	}
	return cli
}
