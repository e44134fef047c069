package server

// The write path: responses written in request order, large fetch responses without a copy.

import (
	"bufio"
	"encoding/binary"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// writeLoop writes responses in request order, flushing whenever the next response is not
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
		default:
			// The next response is not ready (a fetch's long poll, say): what is buffered
			// goes out now instead of waiting behind it.
			if w.Buffered() > 0 && w.Flush() != nil {
				failed = true
				c.cancel()
				c.nc.Close()
				continue
			}
			select {
			case <-in.done:
			case <-c.ctx.Done():
				failed = true
				continue
			}
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
