package backend

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Stats are the counters of the broker side, shared by every pool of a proxy.
type Stats struct {
	conns    atomic.Int64 // open broker connections
	bytesIn  atomic.Int64 // response bytes read from brokers
	bytesOut atomic.Int64 // request bytes written to brokers
	// OnError, when set, counts a broker error by node and kind (dial, write, read, closed,
	// timeout, protocol).
	OnError func(node, kind string)
}

// Conns, BytesIn and BytesOut read the counters.
func (s *Stats) Conns() int64    { return s.conns.Load() }
func (s *Stats) BytesIn() int64  { return s.bytesIn.Load() }
func (s *Stats) BytesOut() int64 { return s.bytesOut.Load() }

func (s *Stats) brokerError(node int32, kind string) {
	if s.OnError != nil {
		s.OnError(strconv.Itoa(int(node)), kind)
	}
}

// Options configure a Pool.
type Options struct {
	// Conns is the number of shared pipelined connections per broker.
	Conns int
	// DialTimeout bounds a connect.
	DialTimeout time.Duration
	// Header is written at the start of every connection (a PROXY protocol header), if set.
	Header []byte
	// MaxIdle is how many checked-in connections are kept per broker for Checkout.
	MaxIdle int
	Stats   *Stats
}

// Pool keeps connections per broker in two lanes. Shared connections are pipelined and
// picked by a pin, so all requests of one client connection go out on the same connection
// to a broker, in order (the broker handles the produces of a connection in order). Checked
// out connections carry one request at a time, for requests a broker answers only after a
// wait (Fetch's long poll, JoinGroup and SyncGroup), which would otherwise hold up every
// answer behind them on a shared connection.
type Pool struct {
	opts Options

	mu      sync.Mutex
	brokers map[int32]*brokerConns
	closed  bool
}

type brokerConns struct {
	addr   string
	dialMu sync.Mutex
	shared []*Conn
	idle   []*Conn
}

// NewPool returns an empty pool.
func NewPool(opts Options) *Pool {
	if opts.Conns <= 0 {
		opts.Conns = 1
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.MaxIdle <= 0 {
		opts.MaxIdle = 16
	}
	if opts.Stats == nil {
		opts.Stats = &Stats{}
	}
	return &Pool{opts: opts, brokers: map[int32]*brokerConns{}}
}

// errPoolClosed is returned once the pool is closed.
var errPoolClosed = fmt.Errorf("connection pool closed: %w", ErrConnClosed)

func (p *Pool) broker(node int32, addr string) (*brokerConns, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errPoolClosed
	}
	bc := p.brokers[node]
	if bc != nil && bc.addr != addr {
		closeAll(bc)
		bc = nil
	}
	if bc == nil {
		bc = &brokerConns{addr: addr, shared: make([]*Conn, p.opts.Conns)}
		p.brokers[node] = bc
	}
	return bc, nil
}

func (p *Pool) dial(ctx context.Context, node int32, addr string) (*Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, p.opts.DialTimeout)
	defer cancel()
	return Dial(dctx, node, addr, p.opts.Header, p.opts.Stats)
}

// Shared returns the pinned shared connection to a broker, connecting when it has none or
// its connection broke.
func (p *Pool) Shared(ctx context.Context, node int32, addr string, pin uint64) (*Conn, error) {
	bc, err := p.broker(node, addr)
	if err != nil {
		return nil, err
	}
	i := int(pin % uint64(len(bc.shared)))
	p.mu.Lock()
	c := bc.shared[i]
	p.mu.Unlock()
	if c != nil && c.Alive() {
		return c, nil
	}
	bc.dialMu.Lock()
	defer bc.dialMu.Unlock()
	p.mu.Lock()
	c = bc.shared[i]
	p.mu.Unlock()
	if c != nil && c.Alive() {
		return c, nil
	}
	c, err = p.dial(ctx, node, addr)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.brokers[node] != bc {
		c.Close()
		return nil, fmt.Errorf("broker %d at %s left while connecting: %w", node, addr, ErrConnClosed)
	}
	bc.shared[i] = c
	return c, nil
}

// Checkout returns a connection for one request at a time; release gives it back.
func (p *Pool) Checkout(ctx context.Context, node int32, addr string) (*Conn, func(), error) {
	bc, err := p.broker(node, addr)
	if err != nil {
		return nil, nil, err
	}
	var c *Conn
	p.mu.Lock()
	for len(bc.idle) > 0 && c == nil {
		last := bc.idle[len(bc.idle)-1]
		bc.idle = bc.idle[:len(bc.idle)-1]
		if last.Alive() {
			c = last
		}
	}
	p.mu.Unlock()
	if c == nil {
		if c, err = p.dial(ctx, node, addr); err != nil {
			return nil, nil, err
		}
	}
	release := func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.closed && p.brokers[node] == bc && c.Alive() && c.Inflight() == 0 && len(bc.idle) < p.opts.MaxIdle {
			bc.idle = append(bc.idle, c)
			return
		}
		c.Close()
	}
	return c, release, nil
}

// Retain closes the connections of brokers not in live (node id → address), or whose
// address changed.
func (p *Pool) Retain(live map[int32]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for node, bc := range p.brokers {
		if addr, ok := live[node]; !ok || addr != bc.addr {
			closeAll(bc)
			delete(p.brokers, node)
		}
	}
}

// Close closes every connection; later calls fail.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for node, bc := range p.brokers {
		closeAll(bc)
		delete(p.brokers, node)
	}
}

func closeAll(bc *brokerConns) {
	for _, c := range bc.shared {
		if c != nil {
			c.Close()
		}
	}
	for _, c := range bc.idle {
		c.Close()
	}
	bc.idle = nil
}
