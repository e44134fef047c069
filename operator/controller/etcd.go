package controller

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kafscale/kafscale/internal/etcdclient"
	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/kafscale/kafscale/operator/api/v1alpha1"
	"github.com/kafscale/kafscale/operator/config"
)

// EtcdEndpoints resolves where a cluster's metadata lives: spec.etcd.endpoints, else the
// operator's KAFSCALE_OPERATOR_ETCD_ENDPOINTS, else the managed etcd's client Service
// <cluster>-etcd (managed reports true).
func EtcdEndpoints(c *v1alpha1.KafscaleCluster, cfg *config.Operator) (endpoints []string, managed bool) {
	if len(c.Spec.Etcd.Endpoints) > 0 {
		return c.Spec.Etcd.Endpoints, false
	}
	if len(cfg.EtcdEndpoints) > 0 {
		return cfg.EtcdEndpoints, false
	}
	return []string{fmt.Sprintf("http://%s.%s.svc:2379", EtcdServiceName(c), c.Namespace)}, true
}

// EtcdServiceName is the managed etcd's client Service, the name the chart's proxy and
// console default to.
func EtcdServiceName(c *v1alpha1.KafscaleCluster) string { return c.Name + "-etcd" }

// EtcdPool shares etcd clients and metadata stores between reconciles, keyed by endpoints.
type EtcdPool struct {
	mu      sync.Mutex
	clients map[string]*clientv3.Client
	stores  map[string]*metadata.Store
}

// NewEtcdPool returns an empty pool.
func NewEtcdPool() *EtcdPool {
	return &EtcdPool{clients: map[string]*clientv3.Client{}, stores: map[string]*metadata.Store{}}
}

// Client returns a client of these endpoints.
func (p *EtcdPool) Client(endpoints []string) (*clientv3.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := strings.Join(endpoints, ",")
	if c, ok := p.clients[key]; ok {
		return c, nil
	}
	c, err := etcdclient.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second}, slog.Default())
	if err != nil {
		return nil, fmt.Errorf("etcd client for %s: %w", key, err)
	}
	p.clients[key] = c
	return c, nil
}

// Store returns the metadata store of one cluster on these endpoints; the first call reads
// the snapshot and so fails when etcd does not answer.
func (p *EtcdPool) Store(ctx context.Context, endpoints []string, keys metadata.Keys) (*metadata.Store, error) {
	cli, err := p.Client(endpoints)
	if err != nil {
		return nil, err
	}
	id := strings.Join(endpoints, ",") + keys.Prefix()
	p.mu.Lock()
	s, ok := p.stores[id]
	p.mu.Unlock()
	if ok {
		return s, nil
	}
	s, err = metadata.NewStore(ctx, cli, keys, metadata.StoreOptions{})
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if prev, ok := p.stores[id]; ok {
		s.Close()
		return prev, nil
	}
	p.stores[id] = s
	return s, nil
}

// Close closes every store and client.
func (p *EtcdPool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, s := range p.stores {
		s.Close()
		delete(p.stores, id)
	}
	for id, c := range p.clients {
		_ = c.Close()
		delete(p.clients, id)
	}
}
