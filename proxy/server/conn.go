package server

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/kafscale/kafscale/internal/flexcheck"
	"github.com/kafscale/kafscale/proxy/backend"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxPipelined bounds the requests of one client connection read and not yet answered.
const maxPipelined = 128

// conn is one client connection. The reader decodes requests and starts one goroutine per
// request; the writer writes the answers in the order the requests arrived.
type conn struct {
	s      *Server
	nc     net.Conn
	remote string
	pin    uint64        // picks this client's shared connection to each broker
	pool   *backend.Pool // s.pool, or this client's own (PROXY protocol)

	ctx    context.Context // cancelled when the connection goes away
	cancel context.CancelFunc

	pending  chan *inflight
	budget   *byteBudget // request bytes of this connection in flight
	stop     chan struct{}
	stopOnce sync.Once

	// lastProduce is closed once the previous Produce of this connection has been written to
	// the brokers, so pipelined produces reach each broker in arrival order.
	lastProduce chan struct{}
	// lastFetch is closed once the previous Fetch of this connection has been answered (its
	// answer written to the client or dropped): a connection's fetches are forwarded one at
	// a time, so the proxy holds at most one fetch answer per client connection however
	// many fetches it pipelines. Clients keep one fetch per broker in flight and never wait.
	lastFetch chan struct{}
}

// request is one decoded client request.
type request struct {
	key, version int16
	corr         int32
	clientID     *string
	body         []byte // the request body as the client sent it
	msg          kmsg.Request

	// Produce: wait for turn before writing to brokers, call sent after. Fetch: wait for
	// turn (the previous fetch answered) before forwarding.
	turn <-chan struct{}
	sent func()
}

// response is what is written back: a kmsg response, or a broker's response body as is.
// release, when set, is called once the answer is written or dropped: the bytes it refers
// to may be reused from then on.
type response struct {
	msg     kmsg.Response
	raw     []byte
	release func()
}

func (r *response) done() {
	if r != nil && r.release != nil {
		r.release()
		r.release = nil
	}
}

// inflight is one request being answered.
type inflight struct {
	key, version int16
	corr         int32
	start        time.Time
	size         int64 // frame bytes held in the budgets
	done         chan struct{}
	resp         *response // nil: send nothing
	err          error     // non-nil: close the connection
	answered     func()    // when set, called once the answer is written or dropped
}

// drop ends in's life in the writer once its answer is written or will never be. It does
// not touch in.resp: a dropped request's handler may still be running.
func (c *conn) drop(in *inflight) {
	c.releaseBytes(in.size)
	if in.answered != nil {
		in.answered()
	}
}

func (s *Server) newConn(nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan struct{})
	close(first)
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return &conn{
		s: s, nc: nc, remote: nc.RemoteAddr().String(), pin: s.nextConn.Add(1), pool: s.clientPool(nc),
		ctx: ctx, cancel: cancel,
		pending:     make(chan *inflight, maxPipelined),
		budget:      newByteBudget(s.cfg.MaxInflightBytesPerConn),
		stop:        make(chan struct{}),
		lastProduce: first,
		lastFetch:   first,
	}
}

func (c *conn) stopReading() {
	c.stopOnce.Do(func() {
		close(c.stop)
		_ = c.nc.SetReadDeadline(time.Now())
	})
}

func (c *conn) serve() {
	c.s.metrics.connections.Inc()
	defer c.s.metrics.connections.Dec()
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	reason := c.readLoop(bufio.NewReaderSize(c.nc, 64<<10))
	select {
	case <-c.stop: // graceful shutdown: what was read is still answered
	default:
		c.cancel()
	}
	close(c.pending)
	<-writerDone
	c.cancel()
	c.nc.Close()
	if c.pool != c.s.pool {
		c.pool.Close()
	}
	if reason != nil && !errors.Is(reason, errClosedByPeer) {
		c.s.logger.Info("closing client connection", "remote", c.remote, "reason", reason)
	}
}

var errClosedByPeer = errors.New("closed by client")

func (c *conn) readLoop(r *bufio.Reader) error {
	var sizeBuf [4]byte
	for {
		if _, err := io.ReadFull(r, sizeBuf[:]); err != nil {
			return c.readError(err)
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		if size < 8 || size > c.s.cfg.MaxRequestBytes {
			c.s.metrics.rejected("frame_size")
			return fmt.Errorf("request frame of %d bytes outside [8, %d] (KAFSCALE_PROXY_MAX_REQUEST_BYTES)", size, c.s.cfg.MaxRequestBytes)
		}
		if !c.budget.acquire(int64(size), c.stop) {
			return errors.New("proxy shutting down")
		}
		if !c.s.budget.acquire(int64(size), c.stop) {
			c.budget.release(int64(size))
			return errors.New("proxy shutting down")
		}
		frame, err := readFrame(r, int(size))
		if err != nil {
			c.releaseBytes(int64(size))
			return c.readError(err)
		}
		c.s.metrics.bytesIn.Add(float64(size) + 4)
		in, req, err := c.decode(frame)
		if err != nil {
			c.releaseBytes(int64(size))
			c.s.metrics.rejected("malformed")
			return err
		}
		in.size = int64(size)
		select {
		case c.pending <- in:
		case <-c.ctx.Done():
			c.releaseBytes(int64(size))
			return errors.New("writer gone")
		}
		if req == nil {
			continue // answered already
		}
		go c.handle(in, req)
	}
}

func (c *conn) releaseBytes(n int64) {
	c.budget.release(n)
	c.s.budget.release(n)
}

// readFrame reads size bytes, allocating at most 1 MiB before that much has arrived, so a
// client announcing a large frame and sending little holds little.
func readFrame(r io.Reader, size int) ([]byte, error) {
	buf := make([]byte, 0, min(size, 1<<20))
	for len(buf) < size {
		if len(buf) == cap(buf) {
			buf = append(buf[:cap(buf)], make([]byte, size-cap(buf))...)[:len(buf)]
		}
		end := min(cap(buf), size)
		if _, err := io.ReadFull(r, buf[len(buf):end]); err != nil {
			return nil, err
		}
		buf = buf[:end]
	}
	return buf, nil
}

func (c *conn) readError(err error) error {
	select {
	case <-c.stop:
		return errors.New("proxy shutting down")
	default:
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return errClosedByPeer
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("truncated request frame")
	}
	return err
}

// decode parses one frame. A nil request means the answer is already known.
func (c *conn) decode(frame []byte) (*inflight, *request, error) {
	b := kbin.Reader{Src: frame}
	key, version, corr := b.Int16(), b.Int16(), b.Int32()
	in := &inflight{key: key, version: version, corr: corr, start: time.Now(), done: make(chan struct{})}
	reg, ok := handlers[key]
	if !ok {
		return nil, nil, fmt.Errorf("unknown or unsupported api key %d (%s)", key, kmsg.NameForKey(key))
	}
	if key == apiVersionsKey && version > reg.max {
		// KIP-511: the v0 UNSUPPORTED_VERSION answer with our ranges, so the client retries
		// with a version we speak instead of losing the connection.
		in.resp = &response{msg: c.s.unsupportedAPIVersions()}
		close(in.done)
		return in, nil, nil
	}
	if version < reg.min || version > reg.max {
		return nil, nil, fmt.Errorf("%s v%d is outside the supported v%d..v%d", kmsg.NameForKey(key), version, reg.min, reg.max)
	}
	msg := kmsg.RequestForKey(key)
	msg.SetVersion(version)
	r := &request{key: key, version: version, corr: corr, msg: msg}
	if id := b.NullableString(); id != nil {
		s := *id
		r.clientID = &s
	}
	if msg.IsFlexible() {
		for n := b.Uvarint(); n > 0 && b.Ok(); n-- {
			_, size := b.Uvarint(), b.Uvarint()
			b.Span(int(size))
		}
	}
	if err := b.Complete(); err != nil {
		return nil, nil, fmt.Errorf("%s v%d: malformed request header", kmsg.NameForKey(key), version)
	}
	r.body = b.Src
	if msg.IsFlexible() {
		if err := flexcheck.Check(key, version, r.body); err != nil {
			return nil, nil, fmt.Errorf("%s v%d: malformed request body: %w", kmsg.NameForKey(key), version, err)
		}
	}
	if err := msg.ReadFrom(r.body); err != nil {
		return nil, nil, fmt.Errorf("%s v%d: malformed request body: %w", kmsg.NameForKey(key), version, err)
	}
	switch key {
	case produceKey:
		turn, mine := c.lastProduce, make(chan struct{})
		c.lastProduce = mine
		var once sync.Once
		r.turn = turn
		r.sent = func() { once.Do(func() { close(mine) }) }
	case fetchKey:
		turn, mine := c.lastFetch, make(chan struct{})
		c.lastFetch = mine
		r.turn = turn
		in.answered = func() { close(mine) }
	}
	return in, r, nil
}

func (c *conn) handle(in *inflight, r *request) {
	defer close(in.done)
	if r.sent != nil {
		defer r.sent()
	}
	defer func() {
		if p := recover(); p != nil {
			c.s.logger.Error("handler panic", "api", kmsg.NameForKey(in.key), "panic", p, "stack", string(debug.Stack()))
			in.resp, in.err = nil, fmt.Errorf("internal error handling %s", kmsg.NameForKey(in.key))
		}
	}()
	resp, err := handlers[in.key].handle(c, r)
	if resp != nil && resp.msg != nil {
		resp.msg.SetVersion(in.version)
	}
	in.resp, in.err = resp, err
}

// writeLoop writes answers in request order, flushing whenever the next answer is not
// ready, and closes the connection on the first handler error.
func (c *conn) writeLoop() {
	w := bufio.NewWriterSize(c.nc, 64<<10)
	failed := false
	var buf []byte
	for in := range c.pending {
		if failed {
			c.drop(in)
			continue
		}
		select {
		case <-in.done:
		default:
			// The next answer is not ready (a fetch's long poll, say): what is buffered goes
			// out now instead of waiting behind it.
			if w.Buffered() > 0 && w.Flush() != nil {
				failed = true
				c.cancel()
				c.nc.Close()
				c.drop(in)
				continue
			}
			select {
			case <-in.done:
			case <-c.ctx.Done():
				failed = true
				c.drop(in)
				continue
			}
		}
		api := kmsg.NameForKey(in.key)
		if in.err != nil {
			c.s.logger.Info("closing client connection", "remote", c.remote, "api", api, "reason", in.err)
			c.s.metrics.rejected("handler_error")
			failed = true
			c.cancel()
			c.nc.Close()
			c.drop(in)
			continue
		}
		var err error
		if in.resp != nil {
			var body []byte
			if in.resp.raw != nil {
				body = in.resp.raw
			} else {
				buf = in.resp.msg.AppendTo(buf[:0])
				body = buf
			}
			var hdr [9]byte
			n := 8
			binary.BigEndian.PutUint32(hdr[4:8], uint32(in.corr))
			if flexibleResponse(in.key, in.version) {
				n = 9 // empty tag section
			}
			binary.BigEndian.PutUint32(hdr[:4], uint32(n-4+len(body)))
			if len(body) < w.Available() {
				if _, err = w.Write(hdr[:n]); err == nil {
					_, err = w.Write(body)
				}
			} else if err = w.Flush(); err == nil {
				// A large answer (a fetch) goes out with its header in one writev, not
				// copied through w.
				bufs := net.Buffers{hdr[:n], body}
				_, err = bufs.WriteTo(c.nc)
			}
			c.s.metrics.bytesOut.Add(float64(n + len(body)))
			if cap(buf) > 1<<20 {
				buf = nil
			}
		}
		in.resp.done() // written (copied to w or the socket), or nothing to write
		c.drop(in)
		c.s.metrics.observe(api, time.Since(in.start))
		if err == nil && len(c.pending) == 0 {
			err = w.Flush()
		}
		if err != nil {
			failed = true
			c.cancel()
			c.nc.Close()
		}
	}
	if !failed {
		_ = w.Flush()
	}
}

// flexibleResponse says whether the response header of key at version has a tag section
// (flexible versions, except ApiVersions whose response header is always v0).
func flexibleResponse(key, version int16) bool {
	if key == apiVersionsKey {
		return false
	}
	req := kmsg.RequestForKey(key)
	req.SetVersion(version)
	return req.IsFlexible()
}
