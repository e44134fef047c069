package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/kafscale/kafscale/internal/recordbatch/rbtest"
	"github.com/kafscale/kafscale/tests/brokertest"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestIdempotentFranzGoProducer produces with franz-go's defaults (idempotence on, so it
// sends InitProducerId and sequenced batches) and reads every record exactly once.
func TestIdempotentFranzGoProducer(t *testing.T) {
	be := startBackend(t)
	b := be.startBroker(t, 0)
	ctx := testContext(t, 3*time.Minute)
	createTopic(t, b.Addr, "idem", 4)
	want := makeRecords("idem", 10000)
	produceFranz(t, ctx, b.Addr, "idem", want)

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.ConsumeTopics("idem"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []record
	for len(got) < len(want) {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("poll: %v (after %d records)", err, len(got))
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.ProducerID < 0 {
				t.Fatalf("record %s/%d has no producer id: the producer did not use idempotence", r.Topic, r.Offset)
			}
			got = append(got, record{partition: r.Partition, offset: r.Offset, key: string(r.Key), value: string(r.Value), headers: joinHeaders(r.Headers)})
		})
	}
	checkReadBack(t, want, got)
	// Nothing beyond them.
	if ends, err := listEnds(ctx, b.Addr, "idem"); err != nil {
		t.Fatal(err)
	} else {
		total := int64(0)
		for _, e := range ends {
			total += e
		}
		if total != int64(len(want)) {
			t.Fatalf("partitions hold %d records, want %d", total, len(want))
		}
	}
}

// TestIdempotentDuplicatesAndGaps sends hand-made sequenced batches: a resend is answered
// with the original offset and stored once, also across a broker restart (the producer
// state is in etcd); a gap is refused.
func TestIdempotentDuplicatesAndGaps(t *testing.T) {
	be := startBackend(t)
	b := be.startBroker(t, 0)
	ctx := testContext(t, 2*time.Minute)
	createTopic(t, b.Addr, "seq", 1)

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr))
	if err != nil {
		t.Fatal(err)
	}
	init, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctx, cl)
	cl.Close()
	if err != nil || init.ErrorCode != 0 {
		t.Fatalf("InitProducerId: %v, code %d", err, init.ErrorCode)
	}
	pid, epoch := init.ProducerID, init.ProducerEpoch

	send := func(what string, seq int32, values ...string) kmsg.ProduceResponseTopicPartition {
		t.Helper()
		batch := sequencedBatch(pid, epoch, seq, values...)
		for {
			p := produceRaw(t, b.Addr, "seq", batch)
			// Right after a restart the partition may still be claiming its state.
			if (p.ErrorCode == kerr.NotLeaderForPartition.Code || p.ErrorCode == kerr.RequestTimedOut.Code) && ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			t.Logf("%s: seq %d → offset %d, error %v", what, seq, p.BaseOffset, kerr.ErrorForCode(p.ErrorCode))
			return p
		}
	}
	expect := func(p kmsg.ProduceResponseTopicPartition, offset int64) {
		t.Helper()
		if p.ErrorCode != 0 || p.BaseOffset != offset {
			t.Fatalf("answer: offset %d, error %v; want offset %d", p.BaseOffset, kerr.ErrorForCode(p.ErrorCode), offset)
		}
	}
	expect(send("first", 0, "a", "b"), 0)
	expect(send("resend", 0, "a", "b"), 0)
	expect(send("next", 2, "c"), 2)
	if p := send("gap", 9, "x"); p.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("a gap got error %v, want OUT_OF_ORDER_SEQUENCE_NUMBER", kerr.ErrorForCode(p.ErrorCode))
	}
	if p := send("older sequence", 1, "y"); p.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("an older sequence got error %v, want OUT_OF_ORDER_SEQUENCE_NUMBER", kerr.ErrorForCode(p.ErrorCode))
	}

	b.Kill()
	b.Start()
	expect(send("resend after a restart", 2, "c"), 2)
	expect(send("next after a restart", 3, "d"), 3)

	got := consumeAll(t, ctx, b.Addr, "seq")
	var values []string
	for _, r := range got {
		values = append(values, r.value)
	}
	if fmt.Sprint(values) != "[a b c d]" {
		t.Fatalf("the log holds %v, want [a b c d] once each", values)
	}
	checkDense(t, got)
}

func joinHeaders(hs []kgo.RecordHeader) string {
	s := ""
	for i, h := range hs {
		if i > 0 {
			s += ","
		}
		s += h.Key + "=" + string(h.Value)
	}
	return s
}

// sequencedBatch encodes a RecordBatch v2 of an idempotent producer with a correct CRC-32C.
func sequencedBatch(pid int64, epoch int16, seq int32, values ...string) []byte {
	return rbtest.Strings(rbtest.Options{Timestamp: time.Now().UnixMilli(), SameTimestamp: true,
		Idempotent: true, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq}, values...)
}

// TestProducerIDsAreUniqueAcrossBrokers asks two brokers of one cluster for producer ids:
// each takes its own block from the etcd counter, so no id is handed out twice.
func TestProducerIDsAreUniqueAcrossBrokers(t *testing.T) {
	be := startBackend(t)
	brokers := []*brokertest.Broker{be.startBroker(t, 0), be.startBroker(t, 1)}
	seen := map[int64]string{}
	for round := 0; round < 3; round++ {
		for _, b := range brokers {
			c := dial(t, b.Addr)
			write(t, c, kmsg.NewPtrInitProducerIDRequest())
			resp := kmsg.NewPtrInitProducerIDResponse()
			if err := resp.ReadFrom(readResponse(t, c)); err != nil {
				t.Fatal(err)
			}
			who := fmt.Sprintf("broker %d, round %d", b.NodeID, round)
			if resp.ErrorCode != 0 || resp.ProducerID < 0 || resp.ProducerEpoch != 0 {
				t.Fatalf("%s: %+v", who, resp)
			}
			if other, dup := seen[resp.ProducerID]; dup {
				t.Fatalf("producer id %d handed out to %s and %s", resp.ProducerID, other, who)
			}
			seen[resp.ProducerID] = who
		}
	}
}
