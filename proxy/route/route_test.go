package route

import (
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/kafscale/kafscale/internal/metadata"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func newTestTable() *Table {
	return &Table{keys: metadata.Keys{Namespace: "ns", Cluster: "c"}, log: slog.New(slog.DiscardHandler),
		changed: make(chan struct{}), state: &State{Snapshot: &metadata.Snapshot{ControllerID: -1}}}
}

func put(key string, v any, rev int64) *clientv3.Event {
	data, _ := json.Marshal(v)
	return &clientv3.Event{Type: clientv3.EventTypePut, Kv: &mvccpb.KeyValue{Key: []byte(key), Value: data, ModRevision: rev}}
}

func del(key string, rev int64) *clientv3.Event {
	return &clientv3.Event{Type: clientv3.EventTypeDelete, Kv: &mvccpb.KeyValue{Key: []byte(key), ModRevision: rev}}
}

// Watch events build the state; a leader must be registered to be routed to; a state of an
// older revision (a late watch batch after a refresh) never replaces a newer one.
func TestApplyAndLeader(t *testing.T) {
	tb := newTestTable()
	k := tb.keys
	snap := metadata.Snapshot{Brokers: []metadata.Broker{{NodeID: 1, Host: "b1", Port: 9092}},
		Topics: []metadata.Topic{{Name: "t", Partitions: []metadata.Partition{{ID: 0, Leader: 1}, {ID: 1, Leader: 2}}}}}
	changed := tb.Changed()
	tb.apply([]*clientv3.Event{
		put(k.Metadata(), snap, 5),
		put(k.Broker(1), metadata.Member{Broker: metadata.Broker{NodeID: 1, Host: "b1", Port: 9092}}, 5),
		put(k.Broker(7), metadata.Member{Broker: metadata.Broker{NodeID: 8, Host: "liar", Port: 1}}, 5), // key and id disagree
		put(k.Prefix()+"groups/g", map[string]int{"x": 1}, 5),                                           // not ours
	}, 5)
	select {
	case <-changed:
	default:
		t.Fatal("Changed was not closed by a change")
	}
	st := tb.State()
	if b, known, ok := st.Leader("t", 0); !known || !ok || b.Addr != "b1:9092" {
		t.Fatalf("t/0: %v %v %v, want b1:9092", b, known, ok)
	}
	if _, known, ok := st.Leader("t", 1); !known || ok {
		t.Fatalf("t/1 is led by broker 2, which is not registered: known %v ok %v", known, ok)
	}
	if _, known, _ := st.Leader("u", 0); known {
		t.Fatal("unknown topic reported known")
	}
	if len(st.Live) != 1 {
		t.Fatalf("live %v, want broker 1 only (broker 7's registration names node 8)", st.Live)
	}

	tb.apply([]*clientv3.Event{put(k.Broker(2), metadata.Member{Broker: metadata.Broker{NodeID: 2, Host: "b2", Port: 9092}}, 6)}, 6)
	if b, _, ok := tb.State().Leader("t", 1); !ok || b.Addr != "b2:9092" {
		t.Fatalf("t/1 after broker 2 registered: %v %v", b, ok)
	}
	// A late, older batch is ignored.
	tb.apply([]*clientv3.Event{del(k.Broker(2), 4)}, 4)
	if _, _, ok := tb.State().Leader("t", 1); !ok {
		t.Fatal("an older revision replaced the state")
	}
	tb.apply([]*clientv3.Event{del(k.Broker(1), 7)}, 7)
	if _, _, ok := tb.State().Leader("t", 0); ok {
		t.Fatal("broker 1 deregistered but is still routed to")
	}
	if tb.State().Rev != 7 {
		t.Fatalf("revision %d, want 7", tb.State().Rev)
	}
}
