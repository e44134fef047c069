// Package backend holds the proxy's connections to brokers: Conn is one pipelined Kafka
// connection (requests written in call order, responses matched in order by correlation id),
// and Pool keeps them per broker (pool.go).
package backend

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrConnClosed is returned for calls on a connection that broke or was closed (by the broker,
// an idle timeout on its side, or the proxy); the caller's request may or may not have reached
// the broker.
var ErrConnClosed = errors.New("broker connection closed")

// maxResponseBytes caps a response frame from a broker; anything larger means the stream is
// out of step.
const maxResponseBytes = 1 << 30

// Conn is one connection to a broker. Calls may be made from many goroutines at once; the
// requests go out in the order Send is called, which is the order the broker handles
// produces of one connection in.
type Conn struct {
	nc   net.Conn
	addr string
	node int32

	wmu    sync.Mutex // write side: correlation ids, frame writes and the pending queue
	corr   int32
	hdr    []byte
	closed bool

	pmu     sync.Mutex
	pending []*call // in write order

	err      atomic.Pointer[error] // why it closed
	done     chan struct{}         // closed when the connection is closed
	inflight atomic.Int32
	stats    *Stats
}

type call struct {
	corr     int32
	flexible bool // the response header has a tag section
	done     chan struct{}
	frame    []byte // the whole response frame (body is part of it), from getFrame
	body     []byte
	err      error
	gone     atomic.Bool // the caller gave up; drop the response
}

// Dial opens a connection to addr and writes header (a PROXY protocol header, or nothing)
// first.
func Dial(ctx context.Context, node int32, addr string, header []byte, stats *Stats) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		stats.brokerError(node, "dial")
		return nil, fmt.Errorf("connect to broker %d at %s: %w", node, addr, err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	if len(header) > 0 {
		_ = nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := nc.Write(header); err != nil {
			nc.Close()
			stats.brokerError(node, "dial")
			return nil, fmt.Errorf("write PROXY header to broker %d at %s: %w", node, addr, err)
		}
		_ = nc.SetWriteDeadline(time.Time{})
	}
	c := &Conn{nc: nc, addr: addr, node: node, done: make(chan struct{}), stats: stats}
	stats.conns.Add(1)
	go c.readLoop()
	return c, nil
}

// Addr is the broker address the connection goes to.
func (c *Conn) Addr() string { return c.addr }

// Alive reports whether the connection still takes calls.
func (c *Conn) Alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// Inflight is the number of calls waiting for their response.
func (c *Conn) Inflight() int { return int(c.inflight.Load()) }

// Close closes the connection; pending calls fail with ErrConnClosed.
func (c *Conn) Close() { c.fail(ErrConnClosed) }

func (c *Conn) fail(err error) {
	c.wmu.Lock()
	if c.closed {
		c.wmu.Unlock()
		return
	}
	c.closed = true
	c.err.Store(&err)
	c.nc.Close()
	close(c.done)
	c.wmu.Unlock()
	c.stats.conns.Add(-1)
	c.pmu.Lock()
	pending := c.pending
	c.pending = nil
	c.pmu.Unlock()
	for _, cl := range pending {
		cl.err = fmt.Errorf("broker %d at %s: %w", c.node, c.addr, err)
		close(cl.done)
	}
}

// Request is one request to send: its key, version, client id and encoded body.
type Request struct {
	Key, Version int16
	ClientID     *string
	Body         []byte
	// NoResponse is set for requests the broker does not answer (Produce with acks=0).
	NoResponse bool
}

// Send writes the request and waits for its response body (the bytes after the response
// header). When ctx ends first the connection is closed: a broker that does not answer
// within the request's deadline is not trusted with more calls.
func (c *Conn) Send(ctx context.Context, r Request) ([]byte, error) {
	p, err := c.Start(r)
	if err != nil {
		return nil, err
	}
	return p.Wait(ctx)
}

// Pending is a request written to a broker whose response has not been read yet.
type Pending struct {
	c  *Conn
	cl *call // nil: no response expected
}

// Start writes the request; Wait then returns its response. Requests started one after the
// other on a connection reach the broker in that order.
func (c *Conn) Start(r Request) (*Pending, error) {
	cl, err := c.write(r)
	if err != nil {
		return nil, err
	}
	return &Pending{c: c, cl: cl}, nil
}

// Release hands the response's buffer back for reuse. Call it only after Wait returned and
// once nothing refers to the body's bytes any more (nor to anything decoded from them
// without a copy, such as a fetch answer's record batches); never calling it is safe.
func (p *Pending) Release() {
	if p == nil || p.cl == nil || p.cl.frame == nil {
		return
	}
	putFrame(p.cl.frame)
	p.cl.frame, p.cl.body = nil, nil
}

// Wait returns the response body (nil for a request without response). When ctx ends first
// the connection is closed (see Send).
func (p *Pending) Wait(ctx context.Context) ([]byte, error) {
	c, cl := p.c, p.cl
	if cl == nil {
		return nil, nil
	}
	defer c.inflight.Add(-1)
	select {
	case <-cl.done:
		return cl.body, cl.err
	case <-ctx.Done():
		cl.gone.Store(true)
		c.stats.brokerError(c.node, "timeout")
		c.fail(fmt.Errorf("no answer within the request's deadline: %w", ctx.Err()))
		return nil, fmt.Errorf("broker %d at %s: %w", c.node, c.addr, ctx.Err())
	}
}

// Node is the broker's node id.
func (c *Conn) Node() int32 { return c.node }

// write sends the frame and queues the call for its response (nil for NoResponse).
func (c *Conn) write(r Request) (*call, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed {
		return nil, c.closedErr()
	}
	c.corr++
	req := kmsg.RequestForKey(r.Key)
	if req == nil {
		return nil, fmt.Errorf("unknown api key %d", r.Key)
	}
	req.SetVersion(r.Version)
	hdr := c.hdr[:0]
	hdr = append(hdr, 0, 0, 0, 0)
	hdr = binary.BigEndian.AppendUint16(hdr, uint16(r.Key))
	hdr = binary.BigEndian.AppendUint16(hdr, uint16(r.Version))
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(c.corr))
	if r.ClientID == nil {
		hdr = binary.BigEndian.AppendUint16(hdr, 0xffff)
	} else {
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(len(*r.ClientID)))
		hdr = append(hdr, *r.ClientID...)
	}
	if req.IsFlexible() {
		hdr = append(hdr, 0) // no header tags
	}
	binary.BigEndian.PutUint32(hdr, uint32(len(hdr)-4+len(r.Body)))
	c.hdr = hdr
	var cl *call
	if !r.NoResponse {
		cl = &call{corr: c.corr, flexible: req.IsFlexible() && r.Key != 18, done: make(chan struct{})}
		c.inflight.Add(1)
		c.pmu.Lock()
		c.pending = append(c.pending, cl)
		c.pmu.Unlock()
	}
	bufs := net.Buffers{hdr, r.Body}
	n, err := bufs.WriteTo(c.nc)
	c.stats.bytesOut.Add(n)
	if err != nil {
		c.wmu.Unlock()
		c.stats.brokerError(c.node, "write")
		c.fail(fmt.Errorf("write: %v: %w", err, ErrConnClosed))
		c.wmu.Lock()
		if cl != nil {
			c.inflight.Add(-1)
		}
		return nil, c.closedErr()
	}
	return cl, nil
}

func (c *Conn) closedErr() error {
	if p := c.err.Load(); p != nil {
		return fmt.Errorf("broker %d at %s: %w", c.node, c.addr, *p)
	}
	return fmt.Errorf("broker %d at %s: %w", c.node, c.addr, ErrConnClosed)
}

// readLoop reads responses in order and hands each to the call at the head of the queue.
func (c *Conn) readLoop() {
	r := bufio.NewReaderSize(c.nc, 64<<10)
	var sizeBuf [4]byte
	for {
		if _, err := io.ReadFull(r, sizeBuf[:]); err != nil {
			c.readFailed(err)
			return
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		if size < 4 || size > maxResponseBytes {
			c.stats.brokerError(c.node, "protocol")
			c.fail(fmt.Errorf("response frame of %d bytes", size))
			return
		}
		frame := getFrame(int(size))
		if _, err := io.ReadFull(r, frame); err != nil {
			c.readFailed(err)
			return
		}
		c.stats.bytesIn.Add(int64(size) + 4)
		corr := int32(binary.BigEndian.Uint32(frame))
		c.pmu.Lock()
		if len(c.pending) == 0 || c.pending[0].corr != corr {
			c.pmu.Unlock()
			c.stats.brokerError(c.node, "protocol")
			c.fail(fmt.Errorf("response with correlation id %d out of order", corr))
			return
		}
		cl := c.pending[0]
		c.pending[0] = nil
		c.pending = c.pending[1:]
		c.pmu.Unlock()
		body := frame[4:]
		if cl.flexible {
			n, ok := skipTags(body)
			if !ok {
				c.stats.brokerError(c.node, "protocol")
				cl.err = fmt.Errorf("broker %d: malformed response header", c.node)
				close(cl.done)
				c.fail(errors.New("malformed response header"))
				return
			}
			body = body[n:]
		}
		if cl.gone.Load() {
			putFrame(frame)
		} else {
			cl.frame, cl.body = frame, body
		}
		close(cl.done)
	}
}

func (c *Conn) readFailed(err error) {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
		c.pmu.Lock()
		busy := len(c.pending) > 0
		c.pmu.Unlock()
		if busy {
			c.stats.brokerError(c.node, "closed")
		}
		c.fail(ErrConnClosed)
		return
	}
	if !errors.Is(err, net.ErrClosed) {
		c.stats.brokerError(c.node, "read")
	}
	c.fail(fmt.Errorf("read: %v: %w", err, ErrConnClosed))
}

// skipTags returns the length of the tag section at the start of b.
func skipTags(b []byte) (int, bool) {
	off := 0
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return 0, false
	}
	off += k
	for ; n > 0; n-- {
		_, k = binary.Uvarint(b[off:])
		if k <= 0 {
			return 0, false
		}
		off += k
		size, k := binary.Uvarint(b[off:])
		if k <= 0 || size > uint64(len(b)-off-k) {
			return 0, false
		}
		off += k + int(size)
	}
	return off, true
}

// Do sends a kmsg request and decodes its response.
func (c *Conn) Do(ctx context.Context, clientID *string, req kmsg.Request) (kmsg.Response, error) {
	body, err := c.Send(ctx, Request{Key: req.Key(), Version: req.GetVersion(), ClientID: clientID, Body: req.AppendTo(nil)})
	if err != nil {
		return nil, err
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(body); err != nil {
		c.stats.brokerError(c.node, "protocol")
		return nil, fmt.Errorf("broker %d: undecodable %s v%d response: %w", c.node, kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp, nil
}
