package server

import (
	"github.com/kafscale/kafscale/proxy/backend"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Produce: v3-v12 (v13 names topics by id; the brokers stop at v11).
//
// Split by partition leader, the parts written to their brokers in the order the client's
// produces arrived (each client connection has its own shared connection to each broker, and
// a produce is written only once the previous one of the same connection was), so
// pipelined produces of a partition are appended in order. The answers are merged: each
// partition keeps its own outcome, the throttle is the largest. A whole request for one
// broker goes out as the client's bytes, unchanged.
//
// A partition the proxy cannot route (leader not live) or whose broker cannot be reached or
// broke the connection is answered NOT_LEADER_OR_FOLLOWER: the client refreshes its metadata
// and resends; the proxy never resends a produce itself (it cannot know whether the broker
// appended it). A topic the proxy does not know yet goes to any broker, which answers for it.
// acks=0 produces are forwarded and never answered. Leader hints (v10+ CurrentLeader with
// NodeEndpoints) name the proxy (NodeID at its endpoint).

const produceKey = 0

func init() { register(produceKey, 3, 12, handleProduce) }

type partKey struct {
	topic     string
	partition int32
}

func handleProduce(c *conn, r *request) (*response, error) {
	req := r.msg.(*kmsg.ProduceRequest)
	sp := splitByLeader(c.state(), produceKeys(req), c.firstCandidate(r))
	order := sp.order
	whole := len(order) == 1 && len(sp.unroutable) == 0
	var parts map[int32]*kmsg.ProduceRequest
	if whole {
		// One broker takes it all: the client's bytes go as they are.
		parts = map[int32]*kmsg.ProduceRequest{order[0].NodeID: req}
	} else {
		parts = splitProduce(req, sp)
	}
	failed := map[partKey]int16{}
	for k := range sp.unroutable {
		failed[k] = c.retriable(r, kerr.NotLeaderForPartition)
	}
	if len(failed) > 0 {
		c.s.brokerFailed()
	}

	ctx, cancel := c.callContext(millis(req.TimeoutMillis))
	defer cancel()
	select {
	case <-r.turn:
	case <-c.ctx.Done():
		return nil, c.ctx.Err()
	}
	pendings := make([]*backend.Pending, len(order))
	for i, b := range order {
		breq := backend.Request{Key: produceKey, Version: r.version, ClientID: r.clientID, NoResponse: req.Acks == 0}
		if whole {
			breq.Body = r.body
		} else {
			breq.Body = parts[b.NodeID].AppendTo(nil)
		}
		bc, err := c.pool.Shared(ctx, b.NodeID, b.Addr, c.pin)
		if err == nil {
			pendings[i], err = bc.Start(breq)
		}
		if err != nil {
			c.s.brokerFailed()
			markProduce(failed, parts[b.NodeID], c.retriable(r, kerr.NotLeaderForPartition))
		}
	}
	r.sent()
	if req.Acks == 0 {
		return nil, nil
	}

	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	answers := make([]*kmsg.ProduceResponse, len(order))
	raws := make([][]byte, len(order))
	for i, b := range order {
		if pendings[i] == nil {
			continue
		}
		body, err := pendings[i].Wait(ctx)
		if err == nil {
			pr := &kmsg.ProduceResponse{Version: r.version}
			if err = pr.ReadFrom(body); err == nil {
				answers[i], raws[i] = pr, body
				continue
			}
		}
		c.s.brokerFailed()
		markProduce(failed, parts[b.NodeID], c.retriable(r, kerr.NotLeaderForPartition))
	}
	if whole && answers[0] != nil && !produceHints(answers[0]) {
		for _, t := range answers[0].Topics {
			for _, p := range t.Partitions {
				c.s.staleRoute(p.ErrorCode)
			}
		}
		return &response{raw: raws[0]}, nil
	}
	merged := map[partKey]kmsg.ProduceResponseTopicPartition{}
	host, port := c.s.advertised()
	for _, a := range answers {
		if a == nil {
			continue
		}
		resp.ThrottleMillis = max(resp.ThrottleMillis, a.ThrottleMillis)
		for ti := range a.Topics {
			for pi := range a.Topics[ti].Partitions {
				p := &a.Topics[ti].Partitions[pi]
				c.s.staleRoute(p.ErrorCode)
				if p.CurrentLeader.LeaderID >= 0 {
					p.CurrentLeader.LeaderID = NodeID
				}
			}
		}
		produceAnswer.index(a.Topics, merged)
		if len(a.Brokers) > 0 && len(resp.Brokers) == 0 {
			b := kmsg.NewProduceResponseBroker()
			b.NodeID, b.Host, b.Port = NodeID, host, port
			resp.Brokers = append(resp.Brokers, b)
		}
	}
	resp.Topics = answerTopics(produceShape, produceAnswer, req.Topics, merged, func(k partKey) kmsg.ProduceResponseTopicPartition {
		rp := kmsg.NewProduceResponseTopicPartition()
		rp.Partition = k.partition
		rp.BaseOffset, rp.LogAppendTime, rp.LogStartOffset = -1, -1, -1
		rp.ErrorCode = failed[k]
		if rp.ErrorCode == 0 {
			rp.ErrorCode = kerr.NotLeaderForPartition.Code // the broker left it out
		}
		return rp
	})
	return &response{msg: resp}, nil
}

// produceHints reports whether an answer names brokers (leader hints), which must be
// rewritten to the proxy.
func produceHints(a *kmsg.ProduceResponse) bool {
	if len(a.Brokers) > 0 {
		return true
	}
	for _, t := range a.Topics {
		for _, p := range t.Partitions {
			if p.CurrentLeader.LeaderID >= 0 {
				return true
			}
		}
	}
	return false
}

// markProduce answers every partition of a part with code.
func markProduce(failed map[partKey]int16, part *kmsg.ProduceRequest, code int16) {
	if part == nil {
		return
	}
	for _, t := range part.Topics {
		for _, p := range t.Partitions {
			failed[partKey{t.Topic, p.Partition}] = code
		}
	}
}
