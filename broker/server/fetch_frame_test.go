package server

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// randomFetchResponse builds a fetch response the way handleFetch does (kmsg defaults, then
// its fields), with random values, names and batches of every size class: null, empty, a
// few bytes, past the one-byte uvarint, and large.
func randomFetchResponse(r *rand.Rand, version int16) *kmsg.FetchResponse {
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = version
	resp.ThrottleMillis = r.Int32N(1000)
	resp.ErrorCode = int16(r.IntN(3))
	resp.SessionID = r.Int32()
	for range r.IntN(4) {
		t := kmsg.NewFetchResponseTopic()
		t.Topic = string(bytes.Repeat([]byte{'a' + byte(r.IntN(26))}, r.IntN(200)))
		for range r.IntN(5) {
			p := kmsg.NewFetchResponseTopicPartition()
			p.Partition = r.Int32N(100)
			p.ErrorCode = int16(r.IntN(2))
			p.HighWatermark, p.LastStableOffset, p.LogStartOffset = r.Int64(), r.Int64(), r.Int64N(1000)-1
			p.PreferredReadReplica = -1
			switch r.IntN(5) {
			case 0:
				p.RecordBatches = nil
			case 1:
				p.RecordBatches = []byte{}
			case 2:
				p.RecordBatches = randBytes(r, 1+r.IntN(126))
			case 3:
				p.RecordBatches = randBytes(r, 127+r.IntN(20000))
			default:
				p.RecordBatches = randBytes(r, 1<<20+r.IntN(1000))
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestFetchFrameMatchesKmsg: the vector written for a fetch response is byte for byte the
// frame kmsg encodes, at every version the broker serves, and the batches are the cache's
// own bytes (not copies).
func TestFetchFrameMatchesKmsg(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	var meta []byte
	for i := range 400 {
		version := int16(4 + i%9)
		resp := randomFetchResponse(r, version)
		corr := r.Int32()
		want := appendResponse(nil, corr, fetchKey, resp)
		frame, ok := fetchFrame(meta, corr, resp)
		if !ok {
			t.Fatalf("v%d: fetchFrame declined a response handleFetch could build", version)
		}
		meta = frame[0][:0] // reuse, as the writer does
		got := bytes.Join(frame, nil)
		if !bytes.Equal(got, want) {
			t.Fatalf("v%d (case %d): frame of %d bytes differs from kmsg's %d bytes", version, i, len(got), len(want))
		}
		k := 0
		for _, tp := range resp.Topics {
			for _, p := range tp.Partitions {
				if len(p.RecordBatches) == 0 {
					continue
				}
				seg := frame[2*k+1]
				if &seg[0] != &p.RecordBatches[0] || len(seg) != len(p.RecordBatches) {
					t.Fatalf("v%d: batches of partition %d were copied, not referenced", version, p.Partition)
				}
				k++
			}
		}
	}
}

// TestFetchFrameDeclinesWhatItDoesNotEncode: fields handleFetch never sets make fetchFrame
// decline, so the writer falls back to kmsg instead of dropping them.
func TestFetchFrameDeclinesWhatItDoesNotEncode(t *testing.T) {
	base := func() *kmsg.FetchResponse {
		resp := kmsg.NewPtrFetchResponse()
		resp.Version = 12
		tp := kmsg.NewFetchResponseTopic()
		tp.Topic = "t"
		tp.Partitions = append(tp.Partitions, kmsg.NewFetchResponseTopicPartition())
		resp.Topics = append(resp.Topics, tp)
		return resp
	}
	cases := map[string]func(*kmsg.FetchResponse){
		"version 13": func(r *kmsg.FetchResponse) { r.Version = 13 },
		"version 3":  func(r *kmsg.FetchResponse) { r.Version = 3 },
		"aborted transactions": func(r *kmsg.FetchResponse) {
			r.Topics[0].Partitions[0].AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{{}}
		},
		"diverging epoch": func(r *kmsg.FetchResponse) { r.Topics[0].Partitions[0].DivergingEpoch.Epoch = 3 },
		"current leader":  func(r *kmsg.FetchResponse) { r.Topics[0].Partitions[0].CurrentLeader.LeaderID = 1 },
		"snapshot id":     func(r *kmsg.FetchResponse) { r.Topics[0].Partitions[0].SnapshotID.EndOffset = 5 },
		"brokers":         func(r *kmsg.FetchResponse) { r.Brokers = append(r.Brokers, kmsg.NewFetchResponseBroker()) },
	}
	if _, ok := fetchFrame(nil, 1, base()); !ok {
		t.Fatal("the base response was declined")
	}
	for name, mutate := range cases {
		resp := base()
		mutate(resp)
		if _, ok := fetchFrame(nil, 1, resp); ok {
			t.Errorf("%s: encoded, though fetchFrame does not write it", name)
		}
	}
}
