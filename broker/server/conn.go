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

	"github.com/kafscale/kafscale/internal/bytebuf"
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
