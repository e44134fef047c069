package server

import (
	"context"
	"math"

	"github.com/kafscale/kafscale/proxy/backend"
	"github.com/kafscale/kafscale/proxy/route"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fetch: v4-v12 (v13 names topics by id; the brokers stop at v12).
//
// Fetch sessions (KIP-227) are not passed on: brokers get full fetches (session id 0, epoch
// -1) and the client a sessionless answer (session id 0), so it keeps sending full fetches.
// Each fetch to a broker takes a connection of its own for its long poll.
//
// A fetch whose partitions all have one leader goes to it with the client's MaxWait and
// MinBytes, and its answer goes back as the broker wrote it. Otherwise it is split by leader:
// first every part is asked without waiting; if any part has records (or an error) the
// merged answer goes back at once. If none has, every part is asked again with the client's
// MaxWait, and the first part that answers with records is returned together with the other
// parts' answers of the first round (no records, their offsets as of moments ago); parts
// still waiting are left to finish on their own connections and their answers dropped (a
// fetch changes nothing on a broker, the records are fetched again). When MaxWait passes
// without records, the merged empty answer goes back. MaxBytes holds for the merged answer:
// partitions beyond it lose their records (the first partition with records always keeps
// them, as Kafka does) and are fetched again next time.
//
// Partitions without a live leader, or whose broker failed, are answered
// NOT_LEADER_OR_FOLLOWER, so the client refreshes its metadata.
//
// Memory: a client connection's fetches are forwarded one at a time, each once the one
// before is answered, and MaxBytes is lowered to KAFSCALE_PROXY_MAX_INFLIGHT_BYTES_PER_CONN,
// so the proxy holds at most one fetch answer of that size (plus a first record batch
// larger than it, which Kafka always returns) per client connection.

const fetchKey = 1

func init() { register(fetchKey, 4, 12, handleFetch) }

type fetchPart struct {
	b        route.Broker
	req      *kmsg.FetchRequest
	clientID *string
}

type fetchAnswer struct {
	resp *kmsg.FetchResponse
	raw  []byte
	err  error
	// buf holds raw (and the record batches decoded from it, which are not copied) until
	// the answer is written to the client.
	buf *backend.Pending
}

func handleFetch(c *conn, r *request) (*response, error) {
	req := r.msg.(*kmsg.FetchRequest)
	select {
	case <-r.turn: // the connection's previous fetch is answered (conn.lastFetch)
	case <-c.ctx.Done():
		return nil, c.ctx.Err()
	}
	// One answer is at most the connection's share of the proxy's memory, as a Kafka
	// broker's fetch.max.bytes caps it; the client fetches the rest next time.
	if limit := int32(min(c.s.cfg.MaxInflightBytesPerConn, math.MaxInt32)); req.MaxBytes <= 0 || req.MaxBytes > limit {
		req.MaxBytes = limit
	}
	sp := splitByLeader(c.state(), fetchKeys(req), c.firstCandidate(r))
	subs := splitFetch(req, sp)
	parts := make([]*fetchPart, len(sp.order))
	for i, b := range sp.order {
		parts[i] = &fetchPart{b: b, req: subs[b.NodeID], clientID: r.clientID}
	}
	failed := map[partKey]int16{}
	for k := range sp.unroutable {
		failed[k] = c.retriable(r, kerr.NotLeaderForPartition)
	}
	if len(failed) > 0 {
		c.s.brokerFailed()
	}
	wait := millis(req.MaxWaitMillis)

	if len(parts) == 1 && len(failed) == 0 {
		ans := c.fetchFrom(parts[0], req.MaxWaitMillis, req.MinBytes)
		if ans.err == nil && !fetchHints(ans.resp) {
			for _, t := range ans.resp.Topics {
				for _, p := range t.Partitions {
					c.s.staleRoute(p.ErrorCode)
				}
			}
			return &response{raw: ans.raw, release: ans.buf.Release}, nil
		}
		return c.mergedFetch(r, req, parts, []fetchAnswer{ans}, failed), nil
	}
	if len(parts) == 0 {
		return c.mergedFetch(r, req, nil, nil, failed), nil
	}

	first := c.fetchAll(parts, 0, 0)
	if wait <= 0 || anyData(first) {
		return c.mergedFetch(r, req, parts, first, failed), nil
	}
	// Nothing yet: wait on every part, answer with the first that has records.
	type indexed struct {
		i   int
		ans fetchAnswer
	}
	results := make(chan indexed, len(parts))
	for i, fp := range parts {
		go func() { results <- indexed{i, c.fetchFrom(fp, req.MaxWaitMillis, req.MinBytes)} }()
	}
	answers := first
	for range parts {
		var got indexed
		select {
		case got = <-results:
		case <-c.ctx.Done():
			return nil, c.ctx.Err()
		}
		if got.ans.err == nil {
			answers[got.i].buf.Release()
			answers[got.i] = got.ans
		}
		if got.ans.err == nil && anyData([]fetchAnswer{got.ans}) {
			break
		}
	}
	return c.mergedFetch(r, req, parts, answers, failed), nil
}

// fetchFrom sends one part with the given wait, on a connection of its own. Its deadline is
// independent of the client's request, so a part left behind finishes on its own.
func (c *conn) fetchFrom(fp *fetchPart, maxWait, minBytes int32) fetchAnswer {
	sub := *fp.req
	sub.MaxWaitMillis, sub.MinBytes = maxWait, minBytes
	ctx, cancel := context.WithTimeout(context.Background(), millis(maxWait)+c.s.cfg.BrokerRequestTimeout)
	defer cancel()
	bc, release, err := c.pool.Checkout(ctx, fp.b.NodeID, fp.b.Addr)
	if err != nil {
		c.s.brokerFailed()
		return fetchAnswer{err: err}
	}
	defer release()
	pending, err := bc.Start(backendRequest(fetchKey, sub.Version, fp.clientID, sub.AppendTo(nil)))
	if err != nil {
		c.s.brokerFailed()
		return fetchAnswer{err: err}
	}
	body, err := pending.Wait(ctx)
	if err != nil {
		c.s.brokerFailed()
		return fetchAnswer{err: err}
	}
	resp := &kmsg.FetchResponse{Version: sub.Version}
	if err := resp.ReadFrom(body); err != nil {
		pending.Release()
		return fetchAnswer{err: err}
	}
	return fetchAnswer{resp: resp, raw: body, buf: pending}
}

// fetchAll sends every part at once and waits for all.
func (c *conn) fetchAll(parts []*fetchPart, maxWait, minBytes int32) []fetchAnswer {
	out := make([]fetchAnswer, len(parts))
	done := make(chan struct{}, len(parts))
	for i, fp := range parts {
		go func() { out[i] = c.fetchFrom(fp, maxWait, minBytes); done <- struct{}{} }()
	}
	for range parts {
		<-done
	}
	return out
}

// fetchHints reports whether an answer names brokers (leader hints, a preferred read
// replica), which must be rewritten to the proxy.
func fetchHints(a *kmsg.FetchResponse) bool {
	if len(a.Brokers) > 0 {
		return true
	}
	for _, t := range a.Topics {
		for _, p := range t.Partitions {
			if p.CurrentLeader.LeaderID >= 0 || p.PreferredReadReplica >= 0 {
				return true
			}
		}
	}
	return false
}

// anyData reports whether an answer carries records or a partition error.
func anyData(answers []fetchAnswer) bool {
	for _, a := range answers {
		if a.err != nil {
			return true
		}
		for _, t := range a.resp.Topics {
			for _, p := range t.Partitions {
				if len(p.RecordBatches) > 0 || p.ErrorCode != 0 {
					return true
				}
			}
		}
	}
	return false
}

// mergedFetch is mergeFetch's answer, holding the parts' buffers until it is written.
func (c *conn) mergedFetch(r *request, req *kmsg.FetchRequest, parts []*fetchPart, answers []fetchAnswer, failed map[partKey]int16) *response {
	msg := c.mergeFetch(r, req, parts, answers, failed)
	return &response{msg: msg, release: func() {
		for _, a := range answers {
			a.buf.Release()
		}
	}}
}

// mergeFetch builds the client's answer from the parts' answers, in the request's order.
func (c *conn) mergeFetch(r *request, req *kmsg.FetchRequest, parts []*fetchPart, answers []fetchAnswer, failed map[partKey]int16) *kmsg.FetchResponse {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	resp.SessionID = 0
	got := map[partKey]kmsg.FetchResponseTopicPartition{}
	host, port := c.s.advertised()
	for i, a := range answers {
		if a.err != nil || a.resp == nil {
			code := c.retriable(r, kerr.NotLeaderForPartition)
			for _, k := range fetchKeys(parts[i].req) {
				failed[k] = code
			}
			continue
		}
		resp.ThrottleMillis = max(resp.ThrottleMillis, a.resp.ThrottleMillis)
		if a.resp.ErrorCode != 0 && resp.ErrorCode == 0 {
			resp.ErrorCode = a.resp.ErrorCode
		}
		for ti := range a.resp.Topics {
			for pi := range a.resp.Topics[ti].Partitions {
				p := &a.resp.Topics[ti].Partitions[pi]
				c.s.staleRoute(p.ErrorCode)
				if p.CurrentLeader.LeaderID >= 0 {
					p.CurrentLeader.LeaderID = NodeID
				}
				p.PreferredReadReplica = -1 // the proxy is the only broker clients know
			}
		}
		fetchAnswerShape.index(a.resp.Topics, got)
		if len(a.resp.Brokers) > 0 && len(resp.Brokers) == 0 {
			b := kmsg.NewFetchResponseBroker()
			b.NodeID, b.Host, b.Port = NodeID, host, port
			resp.Brokers = append(resp.Brokers, b)
		}
	}
	resp.Topics = answerTopics(fetchShape, fetchAnswerShape, req.Topics, got, func(k partKey) kmsg.FetchResponseTopicPartition {
		rp := kmsg.NewFetchResponseTopicPartition()
		rp.Partition = k.partition
		rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = -1, -1, -1
		rp.ErrorCode = failed[k]
		if rp.ErrorCode == 0 {
			rp.ErrorCode = kerr.NotLeaderForPartition.Code
		}
		return rp
	})
	// MaxBytes holds for the merged answer: partitions beyond it lose their records (the
	// first with records always keeps them) and are fetched again next time.
	budget := int64(req.MaxBytes)
	if req.Version < 3 || budget <= 0 {
		budget = 1 << 62
	}
	var used int64
	for ti := range resp.Topics {
		for pi := range resp.Topics[ti].Partitions {
			p := &resp.Topics[ti].Partitions[pi]
			if n := int64(len(p.RecordBatches)); n > 0 {
				if used > 0 && used+n > budget {
					p.RecordBatches = nil
				} else {
					used += n
				}
			}
		}
	}
	return resp
}
