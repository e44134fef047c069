package server

import (
	"context"
	"sync"
	"time"

	"github.com/kafscale/kafscale/proxy/route"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ApiVersions: v0-v4, answered by the proxy.
//
// Per API key, the range is the intersection of what the proxy handles (its registrations)
// and what every live broker advertises (asked once per broker when it appears, with the
// proxy's own connection). An API a live broker lacks is left out. Before any broker has
// answered, the proxy's own ranges are advertised. A request newer than v4 is answered by the
// connection reader with the v0 UNSUPPORTED_VERSION response carrying the ranges (KIP-511),
// never by closing the connection.

const apiVersionsKey = 18

func init() { register(apiVersionsKey, 0, 4, handleApiVersions) }

func handleApiVersions(c *conn, r *request) (*response, error) {
	c.s.versions.waitProbes(c.ctx, 2*time.Second)
	resp := r.msg.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = c.s.apiKeys()
	return &response{msg: resp}, nil
}

func (s *Server) unsupportedAPIVersions() kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = s.apiKeys()
	return resp
}

// apiKeys is the advertised ranges.
func (s *Server) apiKeys() []kmsg.ApiVersionsResponseApiKey {
	var keys []kmsg.ApiVersionsResponseApiKey
	for _, reg := range supportedKeys() {
		lo, hi, ok := s.versions.intersect(reg.key, reg.min, reg.max)
		if !ok {
			continue
		}
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = reg.key, lo, hi
		keys = append(keys, k)
	}
	return keys
}

type versionRange struct{ min, max int16 }

// versionTable holds the ApiVersions answer of every live broker.
type versionTable struct {
	s *Server

	mu      sync.Mutex
	brokers map[int32]*brokerVersions
}

type brokerVersions struct {
	addr   string
	ready  chan struct{} // closed once keys is known or the probe failed
	keys   map[int16]versionRange
	failed bool
}

func newVersionTable(s *Server) *versionTable {
	return &versionTable{s: s, brokers: map[int32]*brokerVersions{}}
}

// update starts asking new brokers and forgets those that left.
func (t *versionTable) update(st *route.State) {
	t.mu.Lock()
	defer t.mu.Unlock()
	live := map[int32]bool{}
	for _, b := range st.Live {
		live[b.NodeID] = true
		if bv := t.brokers[b.NodeID]; bv != nil && bv.addr == b.Addr && !bv.failed {
			continue
		}
		bv := &brokerVersions{addr: b.Addr, ready: make(chan struct{})}
		t.brokers[b.NodeID] = bv
		go t.probe(b, bv)
	}
	for id := range t.brokers {
		if !live[id] {
			delete(t.brokers, id)
		}
	}
}

// probe asks one broker for its ranges, retrying a few times while it stays live.
func (t *versionTable) probe(b route.Broker, bv *brokerVersions) {
	defer close(bv.ready)
	for attempt := 0; attempt < 5; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		keys, err := t.ask(ctx, b)
		cancel()
		if err == nil {
			t.mu.Lock()
			bv.keys = keys
			t.mu.Unlock()
			return
		}
		t.s.logger.Debug("asking a broker for its ApiVersions", "broker", b.NodeID, "err", err)
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
	t.mu.Lock()
	bv.failed = true // asked again at the next change of the routes
	t.mu.Unlock()
}

func (t *versionTable) ask(ctx context.Context, b route.Broker) (map[int16]versionRange, error) {
	c, err := t.s.own.Shared(ctx, b.NodeID, b.Addr, 0)
	if err != nil {
		return nil, err
	}
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	req.ClientSoftwareName = "kafscale-proxy"
	req.ClientSoftwareVersion = "1"
	resp, err := c.Do(ctx, kmsg.StringPtr("kafscale-proxy"), req)
	if err != nil {
		return nil, err
	}
	ar := resp.(*kmsg.ApiVersionsResponse)
	if ar.ErrorCode != 0 {
		return nil, kerr.ErrorForCode(ar.ErrorCode)
	}
	keys := map[int16]versionRange{}
	for _, k := range ar.ApiKeys {
		keys[k.ApiKey] = versionRange{k.MinVersion, k.MaxVersion}
	}
	return keys, nil
}

// waitProbes waits, at most d, for the probes of live brokers in progress.
func (t *versionTable) waitProbes(ctx context.Context, d time.Duration) {
	t.mu.Lock()
	var waits []chan struct{}
	for _, bv := range t.brokers {
		waits = append(waits, bv.ready)
	}
	t.mu.Unlock()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for _, w := range waits {
		select {
		case <-w:
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// intersect narrows [lo, hi] to what every live broker with known ranges supports.
func (t *versionTable) intersect(key, lo, hi int16) (int16, int16, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, bv := range t.brokers {
		if bv.keys == nil {
			continue
		}
		r, ok := bv.keys[key]
		if !ok {
			return 0, 0, false
		}
		lo, hi = max(lo, r.min), min(hi, r.max)
	}
	return lo, hi, lo <= hi
}

// max is the highest advertised version of key (-1 when not advertised).
func (t *versionTable) max(key int16) int16 {
	reg, ok := handlers[key]
	if !ok {
		return -1
	}
	_, hi, ok := t.intersect(key, reg.min, reg.max)
	if !ok {
		return -1
	}
	return hi
}

// accepts reports whether a broker takes key at version (true while its ranges are unknown:
// it will answer for itself).
func (t *versionTable) accepts(node int32, key, version int16) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	bv := t.brokers[node]
	if bv == nil || bv.keys == nil {
		return true
	}
	r, ok := bv.keys[key]
	return ok && version >= r.min && version <= r.max
}
