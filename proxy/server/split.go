package server

import (
	"context"

	"github.com/kafscale/kafscale/proxy/route"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// leaderSplit is the assignment of a request's partitions to their live leaders.
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

// shape reads and builds the topic entries of one per-partition request or answer type
// (T a topic with its partitions P), so one splitter and one merger serve every API.
type shape[T, P any] struct {
	of        func(*T) (string, []P)       // a topic entry's name and partitions
	make      func(topic string, ps []P) T // a topic entry
	partition func(*P) int32               // a partition's id
}

// keys lists the partitions of topics, in order.
func (s shape[T, P]) keys(topics []T) []partKey {
	var keys []partKey
	for i := range topics {
		name, ps := s.of(&topics[i])
		for j := range ps {
			keys = append(keys, partKey{name, s.partition(&ps[j])})
		}
	}
	return keys
}

// split returns, per broker of sp, the topic entries holding that broker's partitions in
// the order of topics; unroutable partitions are in none.
func (s shape[T, P]) split(topics []T, sp *leaderSplit) map[int32][]T {
	type open struct {
		name string
		ps   []P
	}
	per := map[int32][]open{}
	for i := range topics {
		name, ps := s.of(&topics[i])
		for j := range ps {
			n, ok := sp.node[partKey{name, s.partition(&ps[j])}]
			if !ok {
				continue
			}
			ts := per[n]
			if k := len(ts); k == 0 || ts[k-1].name != name {
				ts = append(ts, open{name: name})
			}
			ts[len(ts)-1].ps = append(ts[len(ts)-1].ps, ps[j])
			per[n] = ts
		}
	}
	out := make(map[int32][]T, len(per))
	for n, ts := range per {
		for _, t := range ts {
			out[n] = append(out[n], s.make(t.name, t.ps))
		}
	}
	return out
}

// index adds the partitions of an answer's topics to got, by key.
func (s shape[T, P]) index(topics []T, got map[partKey]P) {
	for i := range topics {
		name, ps := s.of(&topics[i])
		for j := range ps {
			got[partKey{name, s.partition(&ps[j])}] = ps[j]
		}
	}
}

// answerTopics builds an answer's topic entries (shape as) in the order of the request's
// (shape rs): each partition's answer from got, or missing's for a partition no broker
// answered.
func answerTopics[RT, RP, AT, AP any](rs shape[RT, RP], as shape[AT, AP], topics []RT, got map[partKey]AP, missing func(k partKey) AP) []AT {
	out := make([]AT, 0, len(topics))
	for i := range topics {
		name, ps := rs.of(&topics[i])
		answered := make([]AP, 0, len(ps))
		for j := range ps {
			k := partKey{name, rs.partition(&ps[j])}
			if a, ok := got[k]; ok {
				answered = append(answered, a)
			} else {
				answered = append(answered, missing(k))
			}
		}
		out = append(out, as.make(name, answered))
	}
	return out
}

// byLeader sends every live leader its partitions of a request in parallel (sub builds
// the request for a set of topic entries) and returns the partitions of the answers by key
// with the largest throttle. Partitions of a broker that failed are missing from the
// result; stale routes are noted from each partition's error (code).
func byLeader[RT, RP, AT, AP any](ctx context.Context, c *conn, r *request, rs shape[RT, RP], as shape[AT, AP], topics []RT,
	sub func([]RT) kmsg.Request, answer func(kmsg.Response) (int32, []AT), code func(*AP) int16) (int32, map[partKey]AP) {
	sp := splitByLeader(c.state(), rs.keys(topics), c.firstCandidate(r))
	if len(sp.unroutable) > 0 {
		c.s.brokerFailed()
	}
	parts := rs.split(topics, sp)
	answers := make([][]AT, len(sp.order))
	throttles := make([]int32, len(sp.order))
	parallel(sp.order, func(i int, b route.Broker) {
		resp, err := c.call(ctx, b, r.clientID, sub(parts[b.NodeID]), false)
		if err != nil {
			c.s.brokerFailed()
			return
		}
		throttles[i], answers[i] = answer(resp)
	})
	got := map[partKey]AP{}
	var throttle int32
	for i, a := range answers {
		throttle = max(throttle, throttles[i])
		as.index(a, got)
	}
	for _, p := range got {
		c.s.staleRoute(code(&p))
	}
	return throttle, got
}

var (
	produceShape = shape[kmsg.ProduceRequestTopic, kmsg.ProduceRequestTopicPartition]{
		of: func(t *kmsg.ProduceRequestTopic) (string, []kmsg.ProduceRequestTopicPartition) {
			return t.Topic, t.Partitions
		},
		make: func(topic string, ps []kmsg.ProduceRequestTopicPartition) kmsg.ProduceRequestTopic {
			return kmsg.ProduceRequestTopic{Topic: topic, Partitions: ps}
		},
		partition: func(p *kmsg.ProduceRequestTopicPartition) int32 { return p.Partition },
	}
	produceAnswer = shape[kmsg.ProduceResponseTopic, kmsg.ProduceResponseTopicPartition]{
		of: func(t *kmsg.ProduceResponseTopic) (string, []kmsg.ProduceResponseTopicPartition) {
			return t.Topic, t.Partitions
		},
		make: func(topic string, ps []kmsg.ProduceResponseTopicPartition) kmsg.ProduceResponseTopic {
			return kmsg.ProduceResponseTopic{Topic: topic, Partitions: ps}
		},
		partition: func(p *kmsg.ProduceResponseTopicPartition) int32 { return p.Partition },
	}
	fetchShape = shape[kmsg.FetchRequestTopic, kmsg.FetchRequestTopicPartition]{
		of: func(t *kmsg.FetchRequestTopic) (string, []kmsg.FetchRequestTopicPartition) {
			return t.Topic, t.Partitions
		},
		make: func(topic string, ps []kmsg.FetchRequestTopicPartition) kmsg.FetchRequestTopic {
			return kmsg.FetchRequestTopic{Topic: topic, Partitions: ps}
		},
		partition: func(p *kmsg.FetchRequestTopicPartition) int32 { return p.Partition },
	}
	fetchAnswerShape = shape[kmsg.FetchResponseTopic, kmsg.FetchResponseTopicPartition]{
		of: func(t *kmsg.FetchResponseTopic) (string, []kmsg.FetchResponseTopicPartition) {
			return t.Topic, t.Partitions
		},
		make: func(topic string, ps []kmsg.FetchResponseTopicPartition) kmsg.FetchResponseTopic {
			return kmsg.FetchResponseTopic{Topic: topic, Partitions: ps}
		},
		partition: func(p *kmsg.FetchResponseTopicPartition) int32 { return p.Partition },
	}
)

// produceKeys lists the partitions of a produce request, in order.
func produceKeys(req *kmsg.ProduceRequest) []partKey { return produceShape.keys(req.Topics) }

// splitProduce builds one produce request per broker of sp, each with that broker's
// partitions in the request's order and the request's other fields.
func splitProduce(req *kmsg.ProduceRequest, sp *leaderSplit) map[int32]*kmsg.ProduceRequest {
	parts := map[int32]*kmsg.ProduceRequest{}
	for n, topics := range produceShape.split(req.Topics, sp) {
		parts[n] = &kmsg.ProduceRequest{Version: req.Version, TransactionID: req.TransactionID, Acks: req.Acks, TimeoutMillis: req.TimeoutMillis, Topics: topics}
	}
	return parts
}

// fetchKeys lists the partitions of a fetch request, in order.
func fetchKeys(req *kmsg.FetchRequest) []partKey { return fetchShape.keys(req.Topics) }

// splitFetch builds one full, sessionless fetch request per broker of sp.
func splitFetch(req *kmsg.FetchRequest, sp *leaderSplit) map[int32]*kmsg.FetchRequest {
	parts := map[int32]*kmsg.FetchRequest{}
	for n, topics := range fetchShape.split(req.Topics, sp) {
		sub := *req
		sub.SessionID, sub.SessionEpoch, sub.ForgottenTopics, sub.Topics = 0, -1, nil, topics
		parts[n] = &sub
	}
	return parts
}
