package server

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/kafscale/kafscale/internal/flexcheck"
	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/kafscale/kafscale/proxy/route"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// stateFor is a routing state in which topic "t<i>" has partitions 0..7 led by brokers
// chosen from seed (a leader of 9 is not live); other topics are unknown.
func stateFor(seed []byte) *route.State {
	snap := &metadata.Snapshot{ControllerID: -1}
	for i := 0; i < 4; i++ {
		t := metadata.Topic{Name: fmt.Sprintf("t%d", i)}
		for p := int32(0); p < 8; p++ {
			leader := int32(p % 3)
			if len(seed) > 0 {
				leader = int32(seed[(i*8+int(p))%len(seed)] % 4)
				if leader == 3 {
					leader = 9
				}
			}
			t.Partitions = append(t.Partitions, metadata.Partition{ID: p, Leader: leader})
		}
		snap.Topics = append(snap.Topics, t)
	}
	snap.Normalize()
	return &route.State{Rev: 1, Snapshot: snap, Live: []route.Broker{{NodeID: 0, Addr: "b0:1"}, {NodeID: 1, Addr: "b1:1"}, {NodeID: 2, Addr: "b2:1"}}}
}

func fallbackTo(id int32) func() (route.Broker, bool) {
	return func() (route.Broker, bool) { return route.Broker{NodeID: id, Addr: "fallback:1"}, true }
}

// checkSplit checks that every partition occurrence of the request lands in exactly one part
// (of its live leader, or the fallback for unknown topics) or is unroutable, in order.
func checkSplit(t *testing.T, st *route.State, keys []partKey, sp *leaderSplit, partKeys map[int32][]partKey) {
	t.Helper()
	want := map[int32][]partKey{}
	for _, k := range keys {
		b, known, ok := st.Leader(k.topic, k.partition)
		switch {
		case !known:
			want[7] = append(want[7], k)
		case !ok:
			if !sp.unroutable[k] {
				t.Fatalf("%v has no live leader but was routed", k)
			}
		default:
			want[b.NodeID] = append(want[b.NodeID], k)
		}
	}
	if len(want) != len(partKeys) {
		t.Fatalf("parts for %d brokers, want %d", len(partKeys), len(want))
	}
	for n, ks := range want {
		got := partKeys[n]
		if fmt.Sprint(got) != fmt.Sprint(ks) {
			t.Fatalf("broker %d got %v, want %v", n, got, ks)
		}
	}
	if len(sp.order) != len(want) {
		t.Fatalf("order lists %d brokers, want %d", len(sp.order), len(want))
	}
}

// decodes reads a request body as the proxy's reader does: a flexible body's tag sections
// checked first (flexcheck), then kmsg.
func decodes(req kmsg.Request, body []byte) bool {
	if req.IsFlexible() && flexcheck.Check(req.Key(), req.GetVersion(), body) != nil {
		return false
	}
	return req.ReadFrom(body) == nil
}

// FuzzSplit decodes arbitrary bytes as Produce and Fetch requests and checks their split by
// leader: nothing lost, nothing duplicated, order kept, every part encodable, record bytes
// and session fields as they must be. Part of `make fuzz`.
func FuzzSplit(f *testing.F) {
	seedProduce := kmsg.NewPtrProduceRequest()
	seedProduce.Version = 9
	seedProduce.Acks = -1
	for _, tn := range []string{"t0", "t1", "x"} {
		t := kmsg.NewProduceRequestTopic()
		t.Topic = tn
		for p := int32(0); p < 5; p++ {
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition, rp.Records = p, []byte{byte(p), 1, 2}
			t.Partitions = append(t.Partitions, rp)
		}
		seedProduce.Topics = append(seedProduce.Topics, t)
	}
	f.Add(seedProduce.AppendTo(nil), int16(9), []byte{0, 1, 2, 3})
	seedFetch := kmsg.NewPtrFetchRequest()
	seedFetch.Version = 12
	seedFetch.SessionID, seedFetch.SessionEpoch = 5, 3
	for _, tn := range []string{"t2", "t3", "y"} {
		t := kmsg.NewFetchRequestTopic()
		t.Topic = tn
		for p := int32(0); p < 9; p++ {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset = p, int64(p)*10
			t.Partitions = append(t.Partitions, rp)
		}
		seedFetch.Topics = append(seedFetch.Topics, t)
	}
	f.Add(seedFetch.AppendTo(nil), int16(12), []byte{3, 2, 1})
	f.Fuzz(func(t *testing.T, body []byte, version int16, seed []byte) {
		st := stateFor(seed)
		if version >= 3 && version <= 12 {
			req := kmsg.NewPtrProduceRequest()
			req.Version = version
			if decodes(req, body) {
				keys := produceKeys(req)
				sp := splitByLeader(st, keys, fallbackTo(7))
				parts := splitProduce(req, sp)
				got := map[int32][]partKey{}
				records := map[int32][][]byte{}
				for n, sub := range parts {
					back := kmsg.NewPtrProduceRequest()
					back.Version = version
					if err := back.ReadFrom(sub.AppendTo(nil)); err != nil {
						t.Fatalf("part for broker %d does not decode: %v", n, err)
					}
					if back.Acks != req.Acks || back.TimeoutMillis != req.TimeoutMillis {
						t.Fatalf("part for broker %d lost acks/timeout", n)
					}
					for _, tp := range back.Topics {
						for _, p := range tp.Partitions {
							got[n] = append(got[n], partKey{tp.Topic, p.Partition})
							records[n] = append(records[n], p.Records)
						}
					}
				}
				checkSplit(t, st, keys, sp, got)
				// The record bytes go with their partition, unchanged.
				idx := map[int32]int{}
				for _, tp := range req.Topics {
					for _, p := range tp.Partitions {
						n, ok := sp.node[partKey{tp.Topic, p.Partition}]
						if !ok {
							continue
						}
						if !bytes.Equal(records[n][idx[n]], p.Records) {
							t.Fatalf("records of %s/%d changed on the way to broker %d", tp.Topic, p.Partition, n)
						}
						idx[n]++
					}
				}
			}
		}
		if version >= 4 && version <= 12 {
			req := kmsg.NewPtrFetchRequest()
			req.Version = version
			if decodes(req, body) {
				keys := fetchKeys(req)
				sp := splitByLeader(st, keys, fallbackTo(7))
				parts := splitFetch(req, sp)
				got := map[int32][]partKey{}
				for n, sub := range parts {
					back := kmsg.NewPtrFetchRequest()
					back.Version = version
					if err := back.ReadFrom(sub.AppendTo(nil)); err != nil {
						t.Fatalf("fetch part for broker %d does not decode: %v", n, err)
					}
					if version >= 7 && (back.SessionID != 0 || back.SessionEpoch != -1 || len(back.ForgottenTopics) != 0) {
						t.Fatalf("fetch part for broker %d carries a session (%d, %d)", n, back.SessionID, back.SessionEpoch)
					}
					if back.MaxBytes != req.MaxBytes || back.IsolationLevel != req.IsolationLevel {
						t.Fatalf("fetch part for broker %d lost MaxBytes or the isolation level", n)
					}
					for _, tp := range back.Topics {
						for _, p := range tp.Partitions {
							got[n] = append(got[n], partKey{tp.Topic, p.Partition})
						}
					}
				}
				checkSplit(t, st, keys, sp, got)
			}
		}
	})
}

// TestSplitKeepsOrderAndUnroutable: the split of a produce over three brokers, an unknown
// topic (to the fallback) and a partition whose leader is not live.
func TestSplitKeepsOrderAndUnroutable(t *testing.T) {
	st := stateFor([]byte{0, 1, 2, 3, 0, 1, 2, 3})
	keys := []partKey{{"t0", 0}, {"t0", 1}, {"t0", 2}, {"t0", 3}, {"nope", 0}, {"t0", 4}, {"t0", 0}}
	sp := splitByLeader(st, keys, fallbackTo(7))
	if !sp.unroutable[partKey{"t0", 3}] || len(sp.unroutable) != 1 {
		t.Fatalf("unroutable %v, want only t0/3 (leader 9 not live)", sp.unroutable)
	}
	var order []int32
	for _, b := range sp.order {
		order = append(order, b.NodeID)
	}
	if fmt.Sprint(order) != "[0 1 2 7]" {
		t.Fatalf("brokers in order %v, want [0 1 2 7]", order)
	}
	if sp.node[partKey{"nope", 0}] != 7 {
		t.Fatalf("unknown topic went to %d, want the fallback 7", sp.node[partKey{"nope", 0}])
	}
}
