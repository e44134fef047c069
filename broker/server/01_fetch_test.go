package server

import (
	"bytes"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestFetchReturnsProducedBatchesWithOffsets(t *testing.T) {
	b := startTestBroker(t)
	b.createTopic(t, "f", 1)
	c := b.dial(t)
	for i := 0; i < 3; i++ {
		c.roundTrip(produceRequest(-1, "f", 0, makeBatch(1, "a", "b")))
	}
	p := c.roundTrip(fetchRequest("f", 0, 2, 0, 0)).(*kmsg.FetchResponse).Topics[0].Partitions[0]
	if p.ErrorCode != 0 || p.HighWatermark != 6 || p.LastStableOffset != 6 {
		t.Fatalf("error %d hw %d lso %d", p.ErrorCode, p.HighWatermark, p.LastStableOffset)
	}
	var offsets []int64
	for rest := p.RecordBatches; len(rest) > 0; {
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(rest); err != nil {
			t.Fatal(err)
		}
		offsets = append(offsets, rb.FirstOffset)
		rest = rest[12+rb.Length:]
	}
	if len(offsets) != 2 || offsets[0] != 2 || offsets[1] != 4 {
		t.Fatalf("batch offsets %v, want [2 4]", offsets)
	}
}

func TestFetchErrors(t *testing.T) {
	b := startTestBroker(t)
	b.createTopic(t, "f", 1)
	b.createTopic(t, "elsewhere", 1)
	b.cluster.setLeader("elsewhere", 3)
	c := b.dial(t)
	cases := []struct {
		name string
		req  *kmsg.FetchRequest
		want *kerr.Error
	}{
		{"offset past the end", fetchRequest("f", 0, 5, 0, 0), kerr.OffsetOutOfRange},
		{"unknown topic", fetchRequest("nope", 0, 0, 0, 0), kerr.UnknownTopicOrPartition},
		{"not leader", fetchRequest("elsewhere", 0, 0, 0, 0), kerr.NotLeaderForPartition},
	}
	fenced := fetchRequest("f", 0, 0, 0, 0)
	fenced.Topics[0].Partitions[0].CurrentLeaderEpoch = 0 // ours is 1
	cases = append(cases, struct {
		name string
		req  *kmsg.FetchRequest
		want *kerr.Error
	}{"stale leader epoch", fenced, kerr.FencedLeaderEpoch})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := c.roundTrip(tc.req).(*kmsg.FetchResponse).Topics[0].Partitions[0]
			if p.ErrorCode != tc.want.Code {
				t.Fatalf("error %v, want %v", kerr.ErrorForCode(p.ErrorCode), tc.want)
			}
		})
	}
}

func TestFetchMaxWaitPassesWithoutData(t *testing.T) {
	b := startTestBroker(t)
	b.createTopic(t, "quiet", 1)
	c := b.dial(t)
	p := c.roundTrip(fetchRequest("quiet", 0, 0, 20, 1)).(*kmsg.FetchResponse).Topics[0].Partitions[0]
	if p.ErrorCode != 0 || len(p.RecordBatches) != 0 || p.HighWatermark != 0 {
		t.Fatalf("error %d, %d bytes, hw %d", p.ErrorCode, len(p.RecordBatches), p.HighWatermark)
	}
	// Empty, not null: librdkafka fails a fetch whose record set has length -1.
	if p.RecordBatches == nil {
		t.Fatal("record batches encoded as null")
	}
}

func TestFetchMaxBytesStillReturnsOneWholeBatch(t *testing.T) {
	b := startTestBroker(t)
	b.createTopic(t, "big", 2)
	big := makeBatch(1, string(bytes.Repeat([]byte("x"), 4000)))
	c := b.dial(t)
	c.roundTrip(produceRequest(-1, "big", 0, big))
	c.roundTrip(produceRequest(-1, "big", 0, big))
	c.roundTrip(produceRequest(-1, "big", 1, big))
	req := fetchRequest("big", 0, 0, 0, 0)
	rp := req.Topics[0].Partitions[0]
	rp.Partition = 1
	req.Topics[0].Partitions = append(req.Topics[0].Partitions, rp)
	req.MaxBytes = 100
	resp := c.roundTrip(req).(*kmsg.FetchResponse)
	p0, p1 := resp.Topics[0].Partitions[0], resp.Topics[0].Partitions[1]
	if len(p0.RecordBatches) != len(big) {
		t.Fatalf("first partition returned %d bytes, want exactly one batch (%d)", len(p0.RecordBatches), len(big))
	}
	if len(p1.RecordBatches) != 0 || p1.HighWatermark != 1 {
		t.Fatalf("second partition: %d bytes, hw %d; want none over MaxBytes, hw 1", len(p1.RecordBatches), p1.HighWatermark)
	}
}

// Every combination of session id and epoch, answered as Kafka answers when it keeps no
// sessions: full fetches (epoch 0 or -1, any id) get the data and SessionID 0; incremental
// ones (any other epoch) get FETCH_SESSION_ID_NOT_FOUND and no partitions.
func TestFetchSessionsAreNeverCreated(t *testing.T) {
	b := startTestBroker(t)
	b.createTopic(t, "s", 1)
	c := b.dial(t)
	c.roundTrip(produceRequest(-1, "s", 0, makeBatch(1, "a")))
	for _, tc := range []struct {
		name      string
		id, epoch int32
		full      bool
	}{
		{"new session", 0, 0, true},
		{"sessionless (FINAL, no id)", 0, -1, true},
		{"sessionless with id -1", -1, -1, true},
		{"close a named session", 42, -1, true},
		{"reopen a named session", 42, 0, true},
		{"incremental", 42, 1, false},
		{"incremental without id", 0, 1, false},
		{"epoch below FINAL", 42, -2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := fetchRequest("s", 0, 0, 0, 0)
			req.SessionID, req.SessionEpoch = tc.id, tc.epoch
			resp := c.roundTrip(req).(*kmsg.FetchResponse)
			if resp.SessionID != 0 {
				t.Fatalf("session id %d, want 0 (no session is ever created)", resp.SessionID)
			}
			if !tc.full {
				if resp.ErrorCode != kerr.FetchSessionIDNotFound.Code || len(resp.Topics) != 0 {
					t.Fatalf("error %d, %d topics; want FETCH_SESSION_ID_NOT_FOUND and none", resp.ErrorCode, len(resp.Topics))
				}
				return
			}
			if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				t.Fatalf("error %d, topics %+v; want a full answer", resp.ErrorCode, resp.Topics)
			}
			if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.HighWatermark != 1 || len(p.RecordBatches) == 0 {
				t.Fatalf("partition error %d hw %d, %d bytes; want the produced record", p.ErrorCode, p.HighWatermark, len(p.RecordBatches))
			}
		})
	}
}

// responseSize is enough for any fetch response: encoding into a buffer of that capacity
// never grows it, so the batches are copied exactly once.
func TestResponseSizeBoundsFetchResponses(t *testing.T) {
	for version := int16(4); version <= 12; version++ {
		for _, parts := range []int{0, 1, 64} {
			resp := kmsg.NewPtrFetchResponse()
			resp.SetVersion(version)
			for ti := range 3 {
				rt := kmsg.NewFetchResponseTopic()
				rt.Topic = strings.Repeat("t", 200*ti)
				for p := range parts {
					rp := kmsg.NewFetchResponseTopicPartition()
					rp.Partition = int32(p)
					rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = 1<<40, 1<<40, 1<<40
					rp.RecordBatches = bytes.Repeat([]byte{1}, p*1000)
					rt.Partitions = append(rt.Partitions, rp)
				}
				resp.Topics = append(resp.Topics, rt)
			}
			size := responseSize(resp)
			buf := make([]byte, 0, size)
			out := appendResponse(buf, 1, fetchKey, resp)
			if cap(out) != size || len(out) > size {
				t.Fatalf("v%d, %d partitions: %d bytes encoded, bound %d (the buffer grew)", version, parts, len(out), size)
			}
		}
	}
	if responseSize(kmsg.NewPtrMetadataResponse()) != 0 {
		t.Fatal("only fetch responses are sized")
	}
}
