package server

// Framing: reading a request frame (its size first), the PROXY protocol header before the
// first frame, and the errors a read ends with.

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"time"

	"github.com/kafscale/kafscale/internal/bytebuf"
	"github.com/kafscale/kafscale/internal/proxyproto"
)

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
