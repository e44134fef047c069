// Package control is the broker's control-plane gRPC service (controlpb, served on
// KAFSCALE_CONTROL_ADDR) and its client, used by the operator and by the broker's own
// `drain-wait` preStop command.
package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/kafscale/kafscale/broker/control/controlpb"
)

// Drainer is what the service controls: one broker.
type Drainer interface {
	// Drain drains the broker once; later calls return the first result with
	// AlreadyDrained set. A failed drain may be retried.
	Drain(ctx context.Context, reason string) (*controlpb.DrainResponse, error)
	// Status reports the broker's state now.
	Status() *controlpb.StatusResponse
}

// ErrWrongNode is returned (as FAILED_PRECONDITION) when a Drain names another node id.
var ErrWrongNode = errors.New("control: the request names another broker")

// Service implements controlpb.BrokerControlServer over a Drainer.
type Service struct {
	controlpb.UnimplementedBrokerControlServer
	Broker Drainer
}

// Drain checks the request's node id guard and drains.
func (s *Service) Drain(ctx context.Context, req *controlpb.DrainRequest) (*controlpb.DrainResponse, error) {
	if req.NodeId != nil {
		if self := s.Broker.Status().NodeId; *req.NodeId != self {
			return nil, status.Errorf(codes.FailedPrecondition, "%v: this is node %d, the request is for node %d; look the broker up again in its etcd registration", ErrWrongNode, self, *req.NodeId)
		}
	}
	resp, err := s.Broker.Drain(ctx, req.Reason)
	if err != nil {
		if ctx.Err() != nil {
			return nil, status.Errorf(codes.DeadlineExceeded, "drain not finished before the caller's deadline (call Drain again to continue): %v", err)
		}
		return nil, status.Errorf(codes.Unavailable, "drain failed; call Drain again: %v", err)
	}
	return resp, nil
}

// Status reports the broker's state.
func (s *Service) Status(context.Context, *controlpb.StatusRequest) (*controlpb.StatusResponse, error) {
	return s.Broker.Status(), nil
}

// NewServer returns a gRPC server with the control service registered.
func NewServer(d Drainer) *grpc.Server {
	srv := grpc.NewServer()
	controlpb.RegisterBrokerControlServer(srv, &Service{Broker: d})
	return srv
}

// Client talks to one broker's control service.
type Client struct {
	Addr string
	conn *grpc.ClientConn
	rpc  controlpb.BrokerControlClient
}

// Dial prepares a client of the control service at addr (host:port; an empty host means
// 127.0.0.1). It does not connect yet: the first call does, and fails with a clear error when
// nothing answers.
func Dial(addr string) (*Client, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return nil, fmt.Errorf("control address %q: want host:port (KAFSCALE_CONTROL_ADDR)", addr)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	addr = net.JoinHostPort(host, port)
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("control address %s: %w", addr, err)
	}
	return &Client{Addr: addr, conn: conn, rpc: controlpb.NewBrokerControlClient(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Drain drains the broker. nodeID >= 0 makes the broker refuse unless it is that node.
func (c *Client) Drain(ctx context.Context, nodeID int32, reason string) (*controlpb.DrainResponse, error) {
	req := &controlpb.DrainRequest{Reason: reason}
	if nodeID >= 0 {
		req.NodeId = &nodeID
	}
	resp, err := c.rpc.Drain(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("drain broker at %s: %w", c.Addr, explain(err))
	}
	return resp, nil
}

// Status asks the broker for its state.
func (c *Client) Status(ctx context.Context) (*controlpb.StatusResponse, error) {
	resp, err := c.rpc.Status(ctx, &controlpb.StatusRequest{})
	if err != nil {
		return nil, fmt.Errorf("status of broker at %s: %w", c.Addr, explain(err))
	}
	return resp, nil
}

// WaitDrained polls Status every interval until the broker reports DRAINED or ctx ends.
// Connection errors are retried: the service may not be up yet, or already gone.
func (c *Client) WaitDrained(ctx context.Context, interval time.Duration) (*controlpb.StatusResponse, error) {
	var last error
	for {
		callCtx, cancel := context.WithTimeout(ctx, interval+time.Second)
		st, err := c.Status(callCtx)
		cancel()
		if err == nil && st.State == controlpb.StatusResponse_DRAINED {
			return st, nil
		}
		if err != nil {
			last = err
		} else {
			last = fmt.Errorf("broker %d at %s is %s", st.NodeId, c.Addr, st.State)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("not drained before the deadline: %w", last)
		case <-time.After(interval):
		}
	}
}

// explain adds what to do to the gRPC errors a caller is likely to see.
func explain(err error) error {
	switch status.Code(err) {
	case codes.Unavailable:
		return fmt.Errorf("%w (is the broker running with KAFSCALE_CONTROL_ADDR set, and is the address reachable?)", err)
	case codes.Unimplemented:
		return fmt.Errorf("%w (the broker is too old to have this control RPC)", err)
	}
	return err
}
