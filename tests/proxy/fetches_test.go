package proxy

import (
	"bytes"
	"testing"
	"time"

	"github.com/kafscale/kafscale/tests/proxytest"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFetchesOfAConnection: what the proxy holds of fetch answers is bounded per client
// connection, whatever the client asks for, and a fetch's long poll delays no answer
// before it.
func TestFetchesOfAConnection(t *testing.T) {
	const share = 64 << 10 // KAFSCALE_PROXY_MAX_INFLIGHT_BYTES_PER_CONN, its least value
	c := startCluster(t, 1)
	p := c.addProxy(t, proxytest.Options{Env: []string{"KAFSCALE_PROXY_MAX_INFLIGHT_BYTES_PER_CONN=65536"}})
	ctx := testContext(t, 3*time.Minute)
	createTopic(t, ctx, p.Addr, "bounds", 3)

	// 1 MiB in partition 0, one 16 KiB record per batch, produced without waiting for each
	// acknowledgement so that several batches share a segment.
	prod := newClient(t, p.Addr, kgo.DefaultProduceTopic("bounds"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(20<<10))
	value := bytes.Repeat([]byte("v"), 16<<10)
	var records []*kgo.Record
	for range 64 {
		records = append(records, &kgo.Record{Partition: 0, Value: value})
	}
	if err := prod.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fetch := func(partition int32, maxWait int32) *kmsg.FetchRequest {
		req := kmsg.NewPtrFetchRequest()
		req.Version = 11
		req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, maxWait, 1, 1<<30
		req.SessionEpoch = -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "bounds"
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.LogStartOffset = partition, 1<<30, -1, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return req
	}
	recordBytes := func(resp *kmsg.FetchResponse) int {
		n := 0
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				n += len(p.RecordBatches)
			}
		}
		return n
	}

	t.Run("an answer is at most the connection's share", func(t *testing.T) {
		direct := dialRaw(t, c.brokers[0].Addr).roundTrip(fetch(0, 0), 1).(*kmsg.FetchResponse)
		if got := recordBytes(direct); got <= 2*share {
			t.Fatalf("the broker answered %d record bytes: the test needs an answer larger than twice the share", got)
		}
		via := dialRaw(t, p.Addr).roundTrip(fetch(0, 0), 1).(*kmsg.FetchResponse)
		got := recordBytes(via)
		if got == 0 || got > share {
			t.Fatalf("through the proxy a fetch asking for 1 GiB got %d record bytes, want 1..%d (KAFSCALE_PROXY_MAX_INFLIGHT_BYTES_PER_CONN)", got, share)
		}
	})

	t.Run("a connection's fetches are forwarded one at a time", func(t *testing.T) {
		// Fetch A waits on the empty partition 1; fetch B, pipelined behind it on the same
		// connection, asks partition 0 for what is beyond its end now. A record produced to
		// partition 0 while A waits must be in B's answer: B reaches the broker only once A
		// is answered (a record to partition 1 ends A's wait).
		conn := dialRaw(t, p.Addr)
		end := int64(64)
		a, b := fetch(1, 60_000), fetch(0, 0)
		b.Topics[0].Partitions[0].FetchOffset = end
		conn.send(a, 1)
		conn.send(b, 2)
		if err := prod.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte("after B was sent")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := prod.ProduceSync(ctx, &kgo.Record{Partition: 1, Value: []byte("ends A's wait")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		for _, want := range []struct {
			corr      int32
			partition int32
			value     string
		}{{1, 1, "ends A's wait"}, {2, 0, "after B was sent"}} {
			corr, body, err := conn.read(false)
			if err != nil || corr != want.corr {
				t.Fatalf("answer %d: correlation id %d, %v", want.corr, corr, err)
			}
			resp := kmsg.NewPtrFetchResponse()
			resp.Version = 11
			if err := resp.ReadFrom(body); err != nil {
				t.Fatalf("answer %d: %v", want.corr, err)
			}
			rp := resp.Topics[0].Partitions[0]
			if rp.ErrorCode != 0 || rp.Partition != want.partition {
				t.Fatalf("answer %d: partition %d error %d", want.corr, rp.Partition, rp.ErrorCode)
			}
			if !bytes.Contains(rp.RecordBatches, []byte(want.value)) {
				t.Fatalf("answer %d (partition %d): no record %q in %d record bytes; high watermark %d", want.corr, want.partition, want.value, len(rp.RecordBatches), rp.HighWatermark)
			}
		}
	})

	t.Run("an answer does not wait behind a later long poll", func(t *testing.T) {
		// A produce to partition 0, then a fetch of partition 2 beyond its end that waits up
		// to 45 s. The produce's answer must come while the fetch waits: the record produced
		// only after it arrived must be in the fetch's answer. The broker's own connections
		// too.
		for i, target := range []struct{ name, addr string }{{"through the proxy", p.Addr}, {"direct to the broker", c.brokers[0].Addr}} {
			conn := dialRaw(t, target.addr)
			// A produce waits for its flush, so the fetch behind it is queued by then.
			pr := kmsg.NewPtrProduceRequest()
			pr.Version, pr.Acks, pr.TimeoutMillis = 7, -1, 30000
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = "bounds"
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Records = recordBatch("before the long poll")
			rt.Partitions = append(rt.Partitions, rp)
			pr.Topics = append(pr.Topics, rt)
			conn.send(pr, 1)
			f := fetch(2, 45_000)
			f.Topics[0].Partitions[0].FetchOffset = int64(i)
			conn.send(f, 2)
			if corr, _, err := conn.read(false); err != nil || corr != 1 {
				t.Fatalf("%s: Produce answer: correlation id %d, %v", target.name, corr, err)
			}
			value := "after the produce answer " + target.name
			if err := prod.ProduceSync(ctx, &kgo.Record{Partition: 2, Value: []byte(value)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			corr, body, err := conn.read(false)
			if err != nil || corr != 2 {
				t.Fatalf("%s: Fetch answer: correlation id %d, %v", target.name, corr, err)
			}
			resp := kmsg.NewPtrFetchResponse()
			resp.Version = 11
			if err := resp.ReadFrom(body); err != nil {
				t.Fatal(err)
			}
			if rp := resp.Topics[0].Partitions[0]; !bytes.Contains(rp.RecordBatches, []byte(value)) {
				t.Fatalf("%s: the fetch was answered without the record produced once the Produce answer arrived (error %d, high watermark %d): the Produce answer waited behind the long poll",
					target.name, rp.ErrorCode, rp.HighWatermark)
			}
		}
	})
}
