package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kafscale/kafscale/proxy/backend"
	"github.com/kafscale/kafscale/proxy/route"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// errNoBroker is the failure of a request no live broker can take.
var errNoBroker = errors.New("no live broker")

// callContext bounds the calls made for a request: the request's own timeout (own, 0 when it
// has none) plus BrokerRequestTimeout, within the client connection's life.
func (c *conn) callContext(own time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, max(own, 0)+c.s.cfg.BrokerRequestTimeout)
}

func millis(ms int32) time.Duration { return time.Duration(ms) * time.Millisecond }

// state is the current routing state.
func (c *conn) state() *route.State { return c.s.routes.State() }

// send sends an encoded request to a broker on this client's shared connection to it.
func (c *conn) send(ctx context.Context, b route.Broker, r backend.Request) ([]byte, error) {
	bc, err := c.pool.Shared(ctx, b.NodeID, b.Addr, c.pin)
	if err != nil {
		return nil, err
	}
	return bc.Send(ctx, r)
}

// call sends a kmsg request to a broker and decodes the answer. checkout takes a connection
// of its own for requests the broker answers only after a wait.
func (c *conn) call(ctx context.Context, b route.Broker, clientID *string, req kmsg.Request, checkout bool) (kmsg.Response, error) {
	if !checkout {
		bc, err := c.pool.Shared(ctx, b.NodeID, b.Addr, c.pin)
		if err != nil {
			return nil, err
		}
		return bc.Do(ctx, clientID, req)
	}
	bc, release, err := c.pool.Checkout(ctx, b.NodeID, b.Addr)
	if err != nil {
		return nil, err
	}
	defer release()
	return bc.Do(ctx, clientID, req)
}

// candidates lists the live brokers that accept key at version, starting at a rotating
// position so requests any broker answers spread over them.
func (c *conn) candidates(key, version int16) []route.Broker {
	live := c.state().Live
	if len(live) == 0 {
		return nil
	}
	start := int(c.s.rr.Add(1) % uint64(len(live)))
	out := make([]route.Broker, 0, len(live))
	for i := range live {
		b := live[(start+i)%len(live)]
		if c.s.versions.accepts(b.NodeID, key, version) {
			out = append(out, b)
		}
	}
	return out
}

// forwardAny sends the client's request as it came to a broker that accepts it and returns
// that broker's answer. With idempotent set, a broker that cannot be reached or breaks the
// connection is followed by the next one (the request changes nothing, so asking again is
// safe); otherwise the first failure is returned.
func (c *conn) forwardAny(r *request, own time.Duration, idempotent bool) ([]byte, error) {
	ctx, cancel := c.callContext(own)
	defer cancel()
	var last error = errNoBroker
	for _, b := range c.candidates(r.key, r.version) {
		body, err := c.send(ctx, b, backend.Request{Key: r.key, Version: r.version, ClientID: r.clientID, Body: r.body})
		if err == nil {
			return body, nil
		}
		last = err
		c.s.brokerFailed()
		if !idempotent || ctx.Err() != nil {
			break
		}
	}
	return nil, last
}

// forwardAnyMsg is forwardAny with the answer decoded.
func (c *conn) forwardAnyMsg(r *request, own time.Duration, idempotent bool) (kmsg.Response, error) {
	body, err := c.forwardAny(r, own, idempotent)
	if err != nil {
		return nil, err
	}
	resp := r.msg.ResponseKind()
	resp.SetVersion(r.version)
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("undecodable %s v%d answer from a broker: %w", kmsg.NameForKey(r.key), r.version, err)
	}
	return resp, nil
}

// brokerFailed asks for a fresh read of the routes once a broker call failed or a broker
// answered that it no longer owns something. One read is in progress at a time.
func (s *Server) brokerFailed() {
	if !s.refreshing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer s.refreshing.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.routes.Refresh(ctx); err != nil {
			s.logger.Warn("refreshing routes from etcd", "err", err)
		}
	}()
}

// staleRoute reports whether a per-partition or per-group error code means the proxy's
// route (or the client's) is stale, and triggers a refresh when it does.
func (s *Server) staleRoute(code int16) {
	switch code {
	case kerr.NotLeaderForPartition.Code, kerr.NotCoordinator.Code, kerr.CoordinatorNotAvailable.Code,
		kerr.LeaderNotAvailable.Code, kerr.FencedLeaderEpoch.Code, kerr.UnknownLeaderEpoch.Code:
		s.brokerFailed()
	}
}

// retriable counts an error the proxy answers itself.
func (c *conn) retriable(r *request, e *kerr.Error) int16 {
	c.s.metrics.answeredRetriable(kmsg.NameForKey(r.key), e.Message)
	return e.Code
}

// coordinators caches the coordinator node of groups, learnt from FindCoordinator answers.
type coordinators struct {
	mu sync.Mutex
	m  map[string]int32
}

func newCoordinators() *coordinators { return &coordinators{m: map[string]int32{}} }

func (cs *coordinators) get(group string) (int32, bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	n, ok := cs.m[group]
	return n, ok
}

func (cs *coordinators) set(group string, node int32) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if len(cs.m) > 100000 {
		clear(cs.m) // a bound on memory: entries are learnt again on use
	}
	cs.m[group] = node
}

func (cs *coordinators) forget(group string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	delete(cs.m, group)
}

// retain forgets every group of a broker that left: its groups moved.
func (cs *coordinators) retain(live map[int32]string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for g, n := range cs.m {
		if _, ok := live[n]; !ok {
			delete(cs.m, g)
		}
	}
}

// coordinator returns the live coordinator of a group: the cached one, or the one a broker
// names (FindCoordinator, as this client, so ACLs apply to it as to the client).
func (c *conn) coordinator(ctx context.Context, clientID *string, group string) (route.Broker, int16) {
	st := c.state()
	if n, ok := c.s.coords.get(group); ok {
		if b, ok := st.Broker(n); ok {
			return b, 0
		}
		c.s.coords.forget(group)
	}
	found, codes := c.findCoordinators(ctx, clientID, []string{group})
	if b, ok := found[group]; ok {
		return b, 0
	}
	return route.Broker{}, codes[group]
}

// findCoordinators asks a broker for the coordinators of groups and caches them. Groups not
// found carry their error code.
func (c *conn) findCoordinators(ctx context.Context, clientID *string, groups []string) (map[string]route.Broker, map[string]int16) {
	found := map[string]route.Broker{}
	codes := map[string]int16{}
	for _, g := range groups {
		codes[g] = kerr.CoordinatorNotAvailable.Code
	}
	st := c.state()
	batch := c.s.versions.max(findCoordinatorKey) >= 4
	version := int16(3)
	if batch {
		version = 4
	}
	for _, b := range c.candidates(findCoordinatorKey, version) {
		var failed bool
		if batch {
			req := kmsg.NewPtrFindCoordinatorRequest()
			req.SetVersion(version)
			req.CoordinatorKeys = groups
			resp, err := c.call(ctx, b, clientID, req, false)
			if err != nil {
				failed = true
			} else {
				for _, co := range resp.(*kmsg.FindCoordinatorResponse).Coordinators {
					c.noteCoordinator(st, co.Key, co.NodeID, co.ErrorCode, found, codes)
				}
			}
		} else {
			for _, g := range groups {
				req := kmsg.NewPtrFindCoordinatorRequest()
				req.SetVersion(version)
				req.CoordinatorKey = g
				resp, err := c.call(ctx, b, clientID, req, false)
				if err != nil {
					failed = true
					break
				}
				fr := resp.(*kmsg.FindCoordinatorResponse)
				c.noteCoordinator(st, g, fr.NodeID, fr.ErrorCode, found, codes)
			}
		}
		if !failed || ctx.Err() != nil {
			break
		}
		c.s.brokerFailed()
	}
	return found, codes
}

func (c *conn) noteCoordinator(st *route.State, group string, node int32, code int16, found map[string]route.Broker, codes map[string]int16) {
	if code != 0 {
		codes[group] = code
		return
	}
	b, ok := st.Broker(node)
	if !ok {
		codes[group] = kerr.CoordinatorNotAvailable.Code
		return
	}
	c.s.coords.set(group, node)
	found[group] = b
	delete(codes, group)
}

// groupCall sends a group request to the group's coordinator and returns the decoded
// answer, or the error code to answer with (NOT_COORDINATOR when the coordinator cannot be
// reached: the client finds the coordinator again and retries through the proxy).
func (c *conn) groupCall(r *request, group string, own time.Duration, checkout bool) (kmsg.Response, int16) {
	ctx, cancel := c.callContext(own)
	defer cancel()
	b, code := c.coordinator(ctx, r.clientID, group)
	if code != 0 {
		return nil, code
	}
	resp, err := c.call(ctx, b, r.clientID, r.msg, checkout)
	if err != nil {
		c.s.coords.forget(group)
		c.s.brokerFailed()
		return nil, c.retriable(r, kerr.NotCoordinator)
	}
	return resp, 0
}

// noteGroupError forgets a cached coordinator that answered it is not (or no longer) one.
func (c *conn) noteGroupError(group string, code int16) {
	if code == kerr.NotCoordinator.Code || code == kerr.CoordinatorNotAvailable.Code {
		c.s.coords.forget(group)
		c.s.brokerFailed()
	}
}

// advertised is the proxy's endpoint as every answer names it: the one of the listener the
// connection came in on (Server.Advertising).
func (s *Server) advertised() (string, int32) { return s.advHost, s.advPort }

func backendRequest(key, version int16, clientID *string, body []byte) backend.Request {
	return backend.Request{Key: key, Version: version, ClientID: clientID, Body: body}
}

// splitGroups finds the coordinator of every group (cached ones first, the rest in one
// lookup) and returns group → node, the error code of groups without one, and the
// coordinators in order of first appearance.
func (c *conn) splitGroups(ctx context.Context, r *request, groups []string) (map[string]int32, map[string]int16, []route.Broker) {
	st := c.state()
	byNode := map[string]int32{}
	codes := map[string]int16{}
	var unknown []string
	for _, g := range groups {
		if n, ok := c.s.coords.get(g); ok {
			if _, live := st.Broker(n); live {
				byNode[g] = n
				continue
			}
		}
		unknown = append(unknown, g)
	}
	if len(unknown) > 0 {
		found, missing := c.findCoordinators(ctx, r.clientID, unknown)
		for g, b := range found {
			byNode[g] = b.NodeID
		}
		for g, code := range missing {
			codes[g] = code
		}
	}
	seen := map[int32]bool{}
	var order []route.Broker
	for _, g := range groups {
		n, ok := byNode[g]
		if !ok || seen[n] {
			continue
		}
		if b, live := st.Broker(n); live {
			seen[n] = true
			order = append(order, b)
		} else {
			delete(byNode, g)
			codes[g] = kerr.CoordinatorNotAvailable.Code
		}
	}
	return byNode, codes, order
}

// byCoordinator sends each coordinator its groups of a request naming several (sub builds
// the request for a list of groups) in parallel, and returns the answers' groups in the
// request's order with the largest throttle. A group no coordinator answered for gets
// failed's entry with the lookup's error or NOT_COORDINATOR; each answered group's error is
// noted (a coordinator that moved is forgotten).
func byCoordinator[G any](c *conn, r *request, groups []string, sub func([]string) kmsg.Request,
	answer func(kmsg.Response) (int32, []G), key func(*G) (string, int16), failed func(group string, code int16) G) (int32, []G) {
	ctx, cancel := c.callContext(0)
	defer cancel()
	byNode, codes, order := c.splitGroups(ctx, r, groups)
	answers := make([][]G, len(order))
	throttles := make([]int32, len(order))
	parallel(order, func(i int, b route.Broker) {
		var mine []string
		for _, g := range groups {
			if n, ok := byNode[g]; ok && n == b.NodeID {
				mine = append(mine, g)
			}
		}
		a, err := c.call(ctx, b, r.clientID, sub(mine), false)
		if err != nil {
			c.s.brokerFailed()
			return
		}
		throttles[i], answers[i] = answer(a)
	})
	var throttle int32
	got := map[string]G{}
	for i, a := range answers {
		throttle = max(throttle, throttles[i])
		for j := range a {
			name, code := key(&a[j])
			c.noteGroupError(name, code)
			got[name] = a[j]
		}
	}
	out := make([]G, 0, len(groups))
	for _, g := range groups {
		if a, ok := got[g]; ok {
			out = append(out, a)
			continue
		}
		code := codes[g]
		if code == 0 {
			code = c.retriable(r, kerr.NotCoordinator)
		}
		out = append(out, failed(g, code))
	}
	return throttle, out
}
