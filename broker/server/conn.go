package server

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/kafscale/kafscale/broker/logapi"
	"github.com/kafscale/kafscale/internal/bytebuf"
	"github.com/kafscale/kafscale/internal/flexcheck"
	"github.com/kafscale/kafscale/internal/proxyproto"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// conn is one client connection. A reader goroutine decodes requests and starts one
// goroutine per request; the writer goroutine writes the responses in the order the
// requests arrived, which is what Kafka clients rely on when they pipeline.
type conn struct {
	s       *Server
	nc      net.Conn
	remote  string
	peerIP  string // IP of remote, for the remote_addr principal
	proxyIP string // source IP of the PROXY header (empty: none, or LOCAL)

	ctx    context.Context // cancelled when the connection goes away
	cancel context.CancelFunc

	pending  chan *inflight // requests in arrival order; its capacity bounds pipelining
	stop     chan struct{}  // closed by stopReading (graceful shutdown)
	stopOnce sync.Once

	// lastProduce is closed once the previous Produce of this connection has handed its
	// batches to the Log, so pipelined produces append in arrival order.
	lastProduce chan struct{}
}

// inflight is one request being handled.
type inflight struct {
	key, version  int16
	correlationID int32
	clientID      string // for KAFSCALE_TRACE_KAFKA
	start         time.Time
	done          chan struct{}
	resp          kmsg.Response // nil: send nothing
	err           error         // non-nil: close the connection
}

// requestContext is what a handler knows about the request beyond its body.
type requestContext struct {
	clientID  string
	remote    string
	principal string // ACL principal, "User:<…>" (KAFSCALE_PRINCIPAL_SOURCE)

	// Produce only: wait for produceTurn before appending, call releaseTurn after.
	produceTurn <-chan struct{}
	releaseTurn func()
	// recycle, when set, returns the request's bytes to the broker's budget (and a Produce
	// frame for reuse): once the handler is done, or earlier through releaseFrame.
	recycle func()
}

// releaseFrame returns the request's bytes to the budget (and a Produce frame for reuse) now
// instead of when the handler returns. The handler must no longer read any byte slice of its
// request.
func (rc *requestContext) releaseFrame() {
	if rc.recycle != nil {
		rc.recycle()
		rc.recycle = nil
	}
}

func newConn(s *Server, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan struct{})
	close(first)
	remote := nc.RemoteAddr().String()
	return &conn{
		s:           s,
		nc:          nc,
		remote:      remote,
		peerIP:      peerIP(nc.RemoteAddr()),
		ctx:         ctx,
		cancel:      cancel,
		pending:     make(chan *inflight, s.cfg.MaxInflightPerConn),
		stop:        make(chan struct{}),
		lastProduce: first,
	}
}

// peerIP is the IP of a TCP peer address (the whole address for other kinds).
func peerIP(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		if ip4 := t.IP.To4(); ip4 != nil {
			return ip4.String()
		}
		return t.IP.String()
	}
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return a.String()
}

// stopReading makes the reader stop after the frame it is reading; requests already read
// are still answered.
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
	r := bufio.NewReaderSize(c.nc, 64<<10)
	var reason error
	if c.s.cfg.ProxyProtocol {
		reason = c.readProxyHeader(r)
	}
	if reason == nil {
		reason = c.readLoop(r)
	}
	select {
	case <-c.stop:
		// Graceful shutdown: the requests already read are still answered.
	default:
		// The client left or sent something unreadable: nobody waits for the answers, so
		// long polls and waits for flushes end now.
		c.cancel()
	}
	close(c.pending)
	<-writerDone
	c.cancel()
	c.nc.Close()
	if reason != nil {
		c.s.logger.Debug("connection closed", "remote", c.remote, "reason", reason)
	}
}

// errClosedByPeer is the normal end of a connection.
var errClosedByPeer = errors.New("closed by client")

// readLoop reads requests until the connection ends or must be closed, and says why.
func (c *conn) readLoop(r *bufio.Reader) error {
	var sizeBuf [4]byte
	for {
		if _, err := io.ReadFull(r, sizeBuf[:]); err != nil {
			return c.readError(err)
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		if size < 8 || size > c.s.cfg.MaxRequestBytes {
			c.s.metrics.rejected("frame_size")
			return fmt.Errorf("request frame of %d bytes outside [8, %d] (KAFSCALE_MAX_REQUEST_BYTES)", size, c.s.cfg.MaxRequestBytes)
		}
		release, err := c.s.requestBytes.hold(int64(size), c.stop)
		if err != nil {
			return errors.New("broker shutting down")
		}
		// A large frame reuses a free buffer when one fits; otherwise it is allocated whole
		// when the budget holds room for all of it, and a larger one starts at frameUpfront
		// and gets the rest once that much has arrived.
		var buf []byte
		if size > smallFrame {
			buf = c.s.frames.get(int(size))
		}
		if buf == nil && int64(size) <= c.s.requestBytes.limit() {
			buf = bytebuf.Make(frameCap(int(size)))
		}
		frame, err := readFrameInto(buf, r, int(size))
		if err != nil {
			release()
			return c.readError(err)
		}
		release = c.s.requestBytes.chargeSpare(release, frame, int(size))
		in, req, rc, err := c.decode(frame)
		if err != nil || req == nil {
			release()
		} else if in.key == produceKey && size > smallFrame {
			// Only large Produce frames are reused: the Log copies the records, and the
			// decoded request's strings are copies. Other requests keep byte slices of their
			// frame (group metadata, for one), so theirs are not; their bytes count against
			// the budget until their handler is done.
			rc.recycle = func() {
				release()
				c.s.frames.put(frame)
			}
		} else {
			rc.recycle = release
		}
		if err != nil {
			if !errors.Is(err, errDecodeTimeout) {
				c.s.metrics.rejected("malformed")
			}
			if c.s.cfg.TraceKafka {
				c.traceUnreadable(size, err)
			}
			return err
		}
		if c.s.cfg.TraceKafka {
			if rc != nil {
				in.clientID = rc.clientID
			}
			c.traceRequest(in, in.clientID, size)
		}
		select {
		case c.pending <- in:
		case <-c.ctx.Done():
			return errors.New("writer gone")
		}
		if req == nil { // already answered (ApiVersions with a version too new)
			continue
		}
		go c.handle(in, req, rc)
	}
}

// proxyHeaderTimeout bounds the wait for the PROXY header of a new connection.
const proxyHeaderTimeout = 10 * time.Second

// readProxyHeader reads the PROXY protocol header every connection must start with when
// KAFSCALE_PROXY_PROTOCOL is on; a missing or malformed one closes the connection.
func (c *conn) readProxyHeader(r *bufio.Reader) error {
	_ = c.nc.SetReadDeadline(time.Now().Add(proxyHeaderTimeout))
	h, err := proxyproto.Read(r)
	if err != nil {
		select {
		case <-c.stop:
			return errors.New("broker shutting down")
		default:
		}
		c.s.metrics.rejected("proxy_protocol")
		c.s.logger.Info("closing connection without a valid PROXY protocol header (KAFSCALE_PROXY_PROTOCOL=true)", "remote", c.remote, "reason", err)
		return err
	}
	_ = c.nc.SetReadDeadline(time.Time{})
	select {
	case <-c.stop: // stopReading's deadline was just lifted: the broker is shutting down
		return errors.New("broker shutting down")
	default:
	}
	if !h.Local {
		c.proxyIP = h.Source.Addr().Unmap().String()
	}
	return nil
}

// frameUpfront is how much of an announced frame is allocated before its bytes arrive when
// the frame is larger than the request budget (KAFSCALE_MAX_INFLIGHT_REQUEST_BYTES; frames
// within it are allocated whole; the rest of a larger one once this much has arrived): a
// client announcing 100 MiB and sending little holds at most this.
const frameUpfront = 4 << 20

// bufList keeps freed Produce request frames for reuse (see readLoop), at most max bytes of
// them. Unlike a sync.Pool it survives garbage collections, which the broker's soft memory
// limit makes frequent under load, so a busy producer does not allocate, zero and fault in
// every frame anew (franz-go packs a batch per partition into one request: on 64 partitions
// its frames are 16-64 MiB). The buffers it keeps are charged to mem while kept, like the
// frames being handled, so KAFSCALE_CACHE_BYTES bounds them too.
type bufList struct {
	mem logapi.MemoryReserver // may be nil

	mu    sync.Mutex
	free  [][]byte
	bytes int
	max   int
}

// frameCap is the capacity a new buffer for a frame of size bytes gets: above smallFrame,
// size rounded up to a quarter step between powers of two (at most a quarter more), so a
// kept buffer fits the next frames of about the same size.
func frameCap(size int) int {
	if size <= smallFrame {
		return size
	}
	step := 1 << (bits.Len(uint(size)) - 3) // a quarter of the power of two below size
	return (size + step - 1) / step * step
}

// newFrameList sizes the free list for a request budget of limit bytes (0: unbounded): twice
// the budget, so a frame larger than the budget (read alone) and the frames within it can
// all be kept.
func newFrameList(limit int64, mem logapi.MemoryReserver) *bufList {
	if limit <= 0 {
		limit = 32 << 20
	}
	return &bufList{max: int(min(2*limit, 1<<30)), mem: mem}
}

// get returns the smallest free buffer with room for n bytes, emptied, or nil. The caller
// charges it from now on: get returns its charge to mem.
func (l *bufList) get(n int) []byte {
	l.mu.Lock()
	best := -1
	for i, f := range l.free {
		if cap(f) >= n && (best < 0 || cap(f) < cap(l.free[best])) {
			best = i
		}
	}
	if best < 0 {
		l.mu.Unlock()
		return nil
	}
	b := l.removeLocked(best)
	l.mu.Unlock()
	l.uncharge(cap(b))
	return b[:0]
}

// put keeps b for reuse if there is room, else drops it. When full, a larger b replaces the
// smallest free buffers, so the list drifts towards the sizes the clients send. A kept
// buffer is charged to mem until get hands it out or it is dropped.
func (l *bufList) put(b []byte) {
	l.mu.Lock()
	if cap(b) > l.max {
		l.mu.Unlock()
		return
	}
	var dropped int
	for l.bytes+cap(b) > l.max && len(l.free) > 0 {
		small := 0
		for i, f := range l.free {
			if cap(f) < cap(l.free[small]) {
				small = i
			}
		}
		if cap(l.free[small]) >= cap(b) {
			l.mu.Unlock()
			l.uncharge(dropped)
			return
		}
		dropped += cap(l.removeLocked(small))
	}
	l.free = append(l.free, b[:0])
	l.bytes += cap(b)
	l.mu.Unlock()
	l.uncharge(dropped)
	if l.mem != nil {
		l.mem.Reserve(int64(cap(b)))
	}
}

func (l *bufList) uncharge(n int) {
	if l.mem != nil && n > 0 {
		l.mem.Release(int64(n))
	}
}

// removeLocked takes the free buffer at i out of the list (order does not matter) and
// returns it (l.mu held).
func (l *bufList) removeLocked(i int) []byte {
	b := l.free[i]
	last := len(l.free) - 1
	l.free[i] = l.free[last]
	l.free[last] = nil
	l.free = l.free[:last]
	l.bytes -= cap(b)
	return b
}

// readFrame reads size bytes into a buffer of at most frameUpfront bytes, grown to the whole
// frame once that much has arrived.
func readFrame(r io.Reader, size int) ([]byte, error) { return readFrameInto(nil, r, size) }

// readFrameInto is readFrame reusing buf's room when it has enough for frameUpfront.
func readFrameInto(buf []byte, r io.Reader, size int) ([]byte, error) {
	if cap(buf) < min(size, frameUpfront) {
		buf = bytebuf.Make(min(size, frameUpfront))
	}
	for len(buf) < size {
		if len(buf) == cap(buf) {
			// The client has sent frameUpfront bytes: it is sending the frame, so allocate
			// the rest at once (growing by doubling copied a 64 MiB frame almost twice).
			buf = bytebuf.Grow(buf, frameCap(size)-len(buf))
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
		return errors.New("broker shutting down")
	default:
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return errClosedByPeer
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("truncated request frame")
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	return err
}

// decode parses the request header and body of one frame. It returns a nil request when the
// response is already known.
func (c *conn) decode(frame []byte) (*inflight, kmsg.Request, *requestContext, error) {
	b := kbin.Reader{Src: frame}
	key, version, corr := b.Int16(), b.Int16(), b.Int32()
	in := &inflight{key: key, version: version, correlationID: corr, start: time.Now(), done: make(chan struct{})}
	reg, ok := handlers[key]
	if !ok {
		return nil, nil, nil, fmt.Errorf("unknown or unsupported api key %d (%s)", key, kmsg.NameForKey(key))
	}
	if key == apiVersionsKey && version > reg.max {
		// KIP-511: answer v0 with UNSUPPORTED_VERSION and our ranges, so the client retries
		// with a version we speak instead of losing the connection.
		in.resp = unsupportedAPIVersions()
		close(in.done)
		return in, nil, nil, nil
	}
	if version < reg.min || version > reg.max {
		return nil, nil, nil, fmt.Errorf("%s v%d is outside the supported v%d..v%d", kmsg.NameForKey(key), version, reg.min, reg.max)
	}
	req := kmsg.RequestForKey(key)
	req.SetVersion(version)
	rc := &requestContext{remote: c.remote}
	if id := b.NullableString(); id != nil {
		rc.clientID = *id
	}
	rc.principal = c.principal(rc.clientID)
	if req.IsFlexible() {
		skipTags(&b)
	}
	if err := b.Complete(); err != nil {
		return nil, nil, nil, fmt.Errorf("%s v%d: malformed request header", kmsg.NameForKey(key), version)
	}
	if err := c.readBody(req, b.Src); err != nil {
		return nil, nil, nil, fmt.Errorf("%s v%d: malformed request body: %w", kmsg.NameForKey(key), version, err)
	}
	if key == produceKey {
		turn, mine := c.lastProduce, make(chan struct{})
		c.lastProduce = mine
		var once sync.Once
		rc.produceTurn = turn
		rc.releaseTurn = func() { once.Do(func() { close(mine) }) }
	}
	return in, req, rc, nil
}

// skipTags skips a tagged-field section, stopping as soon as the data runs out. (kmsg's
// SkipTags keeps counting down a declared tag count after the data has ended, which a
// 5-byte count turns into billions of iterations.)
func skipTags(b *kbin.Reader) {
	for n := b.Uvarint(); n > 0 && b.Ok(); n-- {
		_, size := b.Uvarint(), b.Uvarint()
		b.Span(int(size))
	}
}

// decodeTimeout bounds the decoding of one flexible request body, a backstop behind
// flexcheck. Well-formed bodies decode in microseconds to milliseconds; kmsg's tag parsing,
// given a huge declared tag count and too few bytes, loops for up to a minute, which
// flexcheck refuses before decoding. A body that still takes longer closes its connection
// after decodeTimeout (the stray decode finishes in the background).
const decodeTimeout = time.Second

var errDecodeTimeout = errors.New("decoding took longer than 1s")

// readBody decodes a request body. A flexible one has its tag sections checked first (a
// section declaring more tags than the body holds would keep kmsg's decoder busy for up to
// a minute) and is decoded within decodeTimeout.
func (c *conn) readBody(req kmsg.Request, body []byte) error {
	if !req.IsFlexible() {
		return req.ReadFrom(body)
	}
	if err := flexcheck.Check(req.Key(), req.GetVersion(), body); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- req.ReadFrom(body) }()
	timer := time.NewTimer(decodeTimeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		c.s.metrics.rejected("decode_timeout")
		return errDecodeTimeout
	}
}

// handle runs the request's handler and hands the result to the writer.
func (c *conn) handle(in *inflight, req kmsg.Request, rc *requestContext) {
	c.s.inflight.Add(1)
	c.s.metrics.inflight.Inc()
	defer func() {
		c.s.inflight.Add(-1)
		c.s.metrics.inflight.Dec()
	}()
	defer close(in.done)
	defer rc.releaseFrame()
	if rc.releaseTurn != nil {
		defer rc.releaseTurn()
	}
	defer func() {
		if p := recover(); p != nil {
			c.s.logger.Error("handler panic", "api", kmsg.NameForKey(in.key), "panic", p, "stack", string(debug.Stack()))
			in.resp, in.err = nil, fmt.Errorf("internal error handling %s", kmsg.NameForKey(in.key))
		}
	}()
	resp, err := handlers[in.key].handle(c.s, c.ctx, rc, req)
	if resp != nil {
		resp.SetVersion(in.version)
	}
	in.resp, in.err = resp, err
}

// writeLoop writes responses in request order, flushing whenever no further response is
// ready, and closes the connection on the first handler error.
func (c *conn) writeLoop() {
	w := bufio.NewWriterSize(c.nc, 64<<10)
	failed := false
	var buf, meta []byte
	for in := range c.pending {
		if failed {
			continue // drain; the reader stops on its own once the connection is closed
		}
		select {
		case <-in.done:
		case <-c.ctx.Done():
			failed = true
			continue
		}
		api := kmsg.NameForKey(in.key)
		if in.err != nil {
			if c.s.cfg.TraceKafka {
				c.traceResponse(in, 0, "connection closed: "+in.err.Error())
			}
			c.s.logger.Info("closing connection", "remote", c.remote, "api", api, "reason", in.err)
			c.s.metrics.rejected("handler_error")
			failed = true
			c.cancel()
			c.nc.Close()
			continue
		}
		var written int64
		if in.resp != nil {
			var err error
			if responseSize(in.resp) > smallResponse {
				meta, written, err = writeLarge(w, c.nc, meta, in.correlationID, in.key, in.resp.(*kmsg.FetchResponse))
			} else {
				buf = appendResponse(buf[:0], in.correlationID, in.key, in.resp)
				written = int64(len(buf))
				_, err = w.Write(buf)
				if cap(buf) > smallResponse {
					buf = nil // do not keep an unusually large one
				}
			}
			if err != nil {
				if c.s.cfg.TraceKafka {
					c.traceResponse(in, 0, "connection closed: write: "+err.Error())
				}
				failed = true
				c.cancel()
				c.nc.Close()
				continue
			}
		}
		if c.s.cfg.TraceKafka {
			if in.resp == nil {
				c.traceResponse(in, 0, "no response (acks=0)")
			} else {
				c.traceResponse(in, written, responseOutcome(in.resp))
			}
		}
		c.s.metrics.observe(api, time.Since(in.start))
		if len(c.pending) == 0 {
			if err := w.Flush(); err != nil {
				failed = true
				c.cancel()
				c.nc.Close()
			}
		}
	}
	if !failed {
		_ = w.Flush()
	}
}

// smallResponse is the largest response a connection encodes into its own buffer; larger
// ones (fetches with record batches) are written as a vector (writeLarge).
const smallResponse = 64 << 10

// writeLarge writes a fetch response without copying its record batches (fetchFrame): what
// w holds first, then the frame straight to nc, with one writev where nc is a TCP
// connection. The fields around the batches are encoded into meta, returned for reuse, with
// the bytes written. A response fetchFrame declines is encoded with kmsg into a buffer of
// its own.
func writeLarge(w *bufio.Writer, nc io.Writer, meta []byte, corr int32, key int16, resp *kmsg.FetchResponse) ([]byte, int64, error) {
	if w.Buffered() > 0 {
		if err := w.Flush(); err != nil {
			return meta, 0, err
		}
	}
	frame, ok := fetchFrame(meta, corr, resp)
	if !ok {
		n, err := w.Write(appendResponse(nil, corr, key, resp)) // bufio writes a large slice straight through
		return meta, int64(n), err
	}
	meta = frame[0][:0]
	n, err := frame.WriteTo(nc)
	return meta, n, err
}

// responseSize bounds the encoded size of a fetch response with record batches (0 for
// other responses): the batches plus a generous allowance per topic and partition.
func responseSize(resp kmsg.Response) int {
	f, ok := resp.(*kmsg.FetchResponse)
	if !ok {
		return 0
	}
	n := 64
	for _, t := range f.Topics {
		n += 64 + len(t.Topic)
		for _, p := range t.Partitions {
			n += 96 + len(p.RecordBatches) + 32*len(p.AbortedTransactions)
		}
	}
	return n
}

// appendResponse frames a response: size, correlation id, header tags (flexible responses
// other than ApiVersions, whose header is always v0), body.
func appendResponse(dst []byte, corr int32, key int16, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	if resp.IsFlexible() && key != apiVersionsKey {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// errorCode is the Kafka error code for err: the code of a kerr error anywhere in its
// chain, else UNKNOWN_SERVER_ERROR. Context expiry maps to REQUEST_TIMED_OUT.
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return kerr.RequestTimedOut.Code
	}
	return kerr.UnknownServerError.Code
}
