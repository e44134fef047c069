package server

import (
	"github.com/kafscale/kafscale/proxy/route"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// leaderSplit is the assignment of a request's partitions to their live leaders.
type routeBroker = route.Broker

type leaderSplit struct {
	order      []route.Broker    // brokers in order of first appearance
	node       map[partKey]int32 // partition → broker node id
	unroutable map[partKey]bool  // no live leader
}

// splitByLeader assigns each partition to its live leader. Partitions of topics the routing
// state does not know go to fallback (any broker, which answers for them), when there is one.
func splitByLeader(st *route.State, keys []partKey, fallback func() (route.Broker, bool)) *leaderSplit {
	s := &leaderSplit{node: map[partKey]int32{}, unroutable: map[partKey]bool{}}
	seen := map[int32]bool{}
	var fb *route.Broker
	for _, k := range keys {
		b, known, ok := st.Leader(k.topic, k.partition)
		if !known {
			if fb == nil {
				if f, ok := fallback(); ok {
					fb = &f
				}
			}
			if fb != nil {
				b, ok = *fb, true
			}
		}
		if !ok {
			s.unroutable[k] = true
			continue
		}
		s.node[k] = b.NodeID
		if !seen[b.NodeID] {
			seen[b.NodeID] = true
			s.order = append(s.order, b)
		}
	}
	return s
}

// firstCandidate is a fallback for splitByLeader: the first broker that accepts the request.
func (c *conn) firstCandidate(r *request) func() (route.Broker, bool) {
	return func() (route.Broker, bool) {
		if cands := c.candidates(r.key, r.version); len(cands) > 0 {
			return cands[0], true
		}
		return route.Broker{}, false
	}
}

// parallel runs fn for every broker of a split at once and waits for all.
func parallel(brokers []route.Broker, fn func(i int, b route.Broker)) {
	done := make(chan struct{}, len(brokers))
	for i, b := range brokers {
		go func() { fn(i, b); done <- struct{}{} }()
	}
	for range brokers {
		<-done
	}
}

// produceKeys lists the partitions of a produce request, in order.
func produceKeys(req *kmsg.ProduceRequest) []partKey {
	var keys []partKey
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			keys = append(keys, partKey{t.Topic, p.Partition})
		}
	}
	return keys
}

// splitProduce builds one produce request per broker of sp, each with that broker's
// partitions in the request's order and the request's other fields.
func splitProduce(req *kmsg.ProduceRequest, sp *leaderSplit) map[int32]*kmsg.ProduceRequest {
	parts := map[int32]*kmsg.ProduceRequest{}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			n, ok := sp.node[partKey{t.Topic, p.Partition}]
			if !ok {
				continue
			}
			sub := parts[n]
			if sub == nil {
				sub = &kmsg.ProduceRequest{Version: req.Version, TransactionID: req.TransactionID, Acks: req.Acks, TimeoutMillis: req.TimeoutMillis}
				parts[n] = sub
			}
			if k := len(sub.Topics); k == 0 || sub.Topics[k-1].Topic != t.Topic {
				sub.Topics = append(sub.Topics, kmsg.ProduceRequestTopic{Topic: t.Topic})
			}
			last := &sub.Topics[len(sub.Topics)-1]
			last.Partitions = append(last.Partitions, p)
		}
	}
	return parts
}

// fetchKeys lists the partitions of a fetch request, in order.
func fetchKeys(req *kmsg.FetchRequest) []partKey {
	var keys []partKey
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			keys = append(keys, partKey{t.Topic, p.Partition})
		}
	}
	return keys
}

// splitFetch builds one full, sessionless fetch request per broker of sp.
func splitFetch(req *kmsg.FetchRequest, sp *leaderSplit) map[int32]*kmsg.FetchRequest {
	parts := map[int32]*kmsg.FetchRequest{}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			n, ok := sp.node[partKey{t.Topic, p.Partition}]
			if !ok {
				continue
			}
			sub := parts[n]
			if sub == nil {
				c := *req
				c.SessionID, c.SessionEpoch, c.ForgottenTopics, c.Topics = 0, -1, nil, nil
				sub = &c
				parts[n] = sub
			}
			if k := len(sub.Topics); k == 0 || sub.Topics[k-1].Topic != t.Topic {
				sub.Topics = append(sub.Topics, kmsg.FetchRequestTopic{Topic: t.Topic})
			}
			last := &sub.Topics[len(sub.Topics)-1]
			last.Partitions = append(last.Partitions, p)
		}
	}
	return parts
}
