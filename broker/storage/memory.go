package storage

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// MemoryServer is an S3-compatible server holding its objects in this process's memory, on
// a loopback port (KAFSCALE_USE_MEMORY_S3): a broker can run with nothing but etcd, for
// development. Everything it holds is lost when the process exits, while the etcd metadata
// pointing at it survives, so a restarted broker finds its partitions' data gone.
type MemoryServer struct {
	// Endpoint is the server's URL; clients must use path-style addressing.
	Endpoint string
	srv      *http.Server
}

// StartMemoryServer starts an in-memory S3 server with bucket created.
func StartMemoryServer(bucket string) (*MemoryServer, error) {
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		return nil, fmt.Errorf("in-memory S3: create bucket %s: %w", bucket, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("in-memory S3: listen on loopback: %w", err)
	}
	srv := &http.Server{Handler: gofakes3.New(backend).Server(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return &MemoryServer{Endpoint: "http://" + ln.Addr().String(), srv: srv}, nil
}

// Close stops the server; its objects are gone.
func (m *MemoryServer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = m.srv.Shutdown(ctx)
}
