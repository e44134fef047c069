package server

// Decoding: a frame's header and body into a kmsg request, bounded in time.

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kafscale/kafscale/internal/flexcheck"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

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
