package server

import (
	"context"
	"errors"
	"testing"

	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/kafscale/kafscale/proxy/route"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type fixedRoutes struct{ st *route.State }

func (f fixedRoutes) State() *route.State           { return f.st }
func (f fixedRoutes) Refresh(context.Context) error { return nil }
func (f fixedRoutes) Changed() <-chan struct{}      { return make(chan struct{}) }

func testConn() *conn {
	st := &route.State{Rev: 1, Snapshot: &metadata.Snapshot{ControllerID: -1}}
	s := New(Config{AdvertisedHost: "proxy", AdvertisedPort: 9092}, fixedRoutes{st}, nil, nil)
	return &conn{s: s, ctx: context.Background()}
}

func fetchPartition(p int32, records int) kmsg.FetchResponseTopicPartition {
	rp := kmsg.NewFetchResponseTopicPartition()
	rp.Partition, rp.HighWatermark = p, 100
	if records > 0 {
		rp.RecordBatches = make([]byte, records)
	}
	return rp
}

// mergeFetch answers in the request's order, every partition once: the parts' answers, the
// failed part's partitions as NOT_LEADER_OR_FOLLOWER; records beyond MaxBytes are dropped
// (the first partition with records keeps them); the throttle is the largest; no session.
func TestMergeFetch(t *testing.T) {
	c := testConn()
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.MaxBytes, req.SessionID = 11, 150, 77
	for _, p := range []int32{0, 1, 2, 3} {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "t"
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	partA := kmsg.NewPtrFetchRequest()
	partA.Topics = []kmsg.FetchRequestTopic{{Topic: "t", Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0}, {Partition: 2}}}}
	partB := kmsg.NewPtrFetchRequest()
	partB.Topics = []kmsg.FetchRequestTopic{{Topic: "t", Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 1}}}}
	partC := kmsg.NewPtrFetchRequest()
	partC.Topics = []kmsg.FetchRequestTopic{{Topic: "t", Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 3}}}}
	ansA := kmsg.NewPtrFetchResponse()
	ansA.ThrottleMillis = 5
	ansA.Topics = []kmsg.FetchResponseTopic{{Topic: "t", Partitions: []kmsg.FetchResponseTopicPartition{fetchPartition(0, 200), fetchPartition(2, 10)}}}
	ansB := kmsg.NewPtrFetchResponse()
	ansB.ThrottleMillis = 9
	ansB.Topics = []kmsg.FetchResponseTopic{{Topic: "t", Partitions: []kmsg.FetchResponseTopicPartition{fetchPartition(1, 0)}}}
	parts := []*fetchPart{{req: partA}, {req: partB}, {req: partC}}
	answers := []fetchAnswer{{resp: ansA}, {resp: ansB}, {err: errors.New("broker gone")}}
	r := &request{key: fetchKey, version: 11, msg: req}
	resp := c.mergeFetch(r, req, parts, answers, map[partKey]int16{})

	if resp.SessionID != 0 || resp.ThrottleMillis != 9 {
		t.Fatalf("session %d throttle %d, want 0 and 9", resp.SessionID, resp.ThrottleMillis)
	}
	var got []kmsg.FetchResponseTopicPartition
	for _, tp := range resp.Topics {
		got = append(got, tp.Partitions...)
	}
	if len(got) != 4 {
		t.Fatalf("%d partitions answered, want 4", len(got))
	}
	for i, p := range got {
		if p.Partition != int32(i) {
			t.Fatalf("position %d holds partition %d: not the request's order", i, p.Partition)
		}
	}
	if len(got[0].RecordBatches) != 200 {
		t.Fatalf("partition 0 lost its records (%d bytes): the first partition with records keeps them over MaxBytes", len(got[0].RecordBatches))
	}
	if len(got[2].RecordBatches) != 0 || got[2].HighWatermark != 100 || got[2].ErrorCode != 0 {
		t.Fatalf("partition 2 beyond MaxBytes: %d bytes, hwm %d, error %d; want no records, its offsets, no error", len(got[2].RecordBatches), got[2].HighWatermark, got[2].ErrorCode)
	}
	if got[3].ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Fatalf("partition 3 of the failed broker: error %d, want NOT_LEADER_OR_FOLLOWER", got[3].ErrorCode)
	}
	if got[1].ErrorCode != 0 {
		t.Fatalf("partition 1: error %d", got[1].ErrorCode)
	}
}
