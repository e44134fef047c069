package server

import (
	"errors"
	"math"
	"testing"

	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestProducePartitionErrors(t *testing.T) {
	b := startTestBroker(t)
	b.createTopic(t, "mine", 1)
	b.createTopic(t, "theirs", 1)
	b.cluster.setLeader("theirs", 7)
	corrupt := makeBatch(1, "x")
	corrupt[len(corrupt)-1] ^= 0xff
	badMagic := makeBatch(1, "x")
	badMagic[16] = 1
	short := makeBatch(1, "x")[:40]
	cases := []struct {
		name      string
		topic     string
		partition int32
		batch     []byte
		want      *kerr.Error
	}{
		{"ok", "mine", 0, makeBatch(1, "a", "b"), nil},
		{"not leader", "theirs", 0, makeBatch(1, "a"), kerr.NotLeaderForPartition},
		{"unknown topic", "nope", 0, makeBatch(1, "a"), kerr.UnknownTopicOrPartition},
		{"unknown partition", "mine", 3, makeBatch(1, "a"), kerr.UnknownTopicOrPartition},
		{"bad crc", "mine", 0, corrupt, kerr.CorruptMessage},
		{"old magic", "mine", 0, badMagic, kerr.UnsupportedForMessageFormat},
		{"truncated batch", "mine", 0, short, kerr.CorruptMessage},
		{"no records", "mine", 0, nil, kerr.InvalidRecord},
	}
	c := b.dial(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := c.roundTrip(produceRequest(-1, tc.topic, tc.partition, tc.batch)).(*kmsg.ProduceResponse)
			got := resp.Topics[0].Partitions[0]
			if err := kerr.ErrorForCode(got.ErrorCode); err != errOrNil(tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if tc.want == nil && got.BaseOffset != 0 {
				t.Fatalf("base offset %d, want 0", got.BaseOffset)
			}
		})
	}
}

func errOrNil(e *kerr.Error) error {
	if e == nil {
		return nil
	}
	return e
}

func TestProduceAcksZeroSendsNoResponse(t *testing.T) {
	b := startTestBroker(t)
	b.createTopic(t, "fire", 1)
	c := b.dial(t)
	c.send(produceRequest(0, "fire", 0, makeBatch(1, "a")))
	c.send(produceRequest(0, "fire", 0, makeBatch(1, "b")))
	c.sent = map[int32]kmsg.Request{} // no answers expected to those
	want := c.send(kmsg.NewPtrApiVersionsRequest())
	if got, _ := c.recv(); got != want {
		t.Fatalf("first answer has correlation id %d, want %d (the ApiVersions after two acks=0 produces)", got, want)
	}
	_, hw, _ := b.log.Offsets(t.Context(), "fire", 0)
	if hw != 2 {
		t.Fatalf("high watermark %d, want 2", hw)
	}
}

func TestProduceAcksZeroErrorClosesTheConnection(t *testing.T) {
	b := startTestBroker(t)
	c := b.dial(t)
	c.send(produceRequest(0, "missing", 0, makeBatch(1, "a")))
	c.expectClosed()
}

func TestPipelinedProducesAppendInArrivalOrderAndShareDurabilityWaits(t *testing.T) {
	b := startTestBroker(t)
	b.createTopic(t, "seq", 1)
	b.log.hold = make(chan struct{}) // nothing becomes durable until released
	c := b.dial(t)
	const n = 50
	var ids []int32
	for i := 0; i < n; i++ {
		ids = append(ids, c.send(produceRequest(-1, "seq", 0, makeBatch(1, "r"))))
	}
	// All n were appended (in order) while none was durable: waits overlap.
	for {
		b.log.mu.Lock()
		appended := len(b.log.appends)
		b.log.mu.Unlock()
		if appended == n {
			break
		}
		<-b.log.Changed()
	}
	close(b.log.hold)
	for i, want := range ids {
		got, resp := c.recv()
		if got != want {
			t.Fatalf("answer %d has correlation id %d, want %d", i, got, want)
		}
		p := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
		if p.ErrorCode != 0 || p.BaseOffset != int64(i) {
			t.Fatalf("answer %d: error %d base offset %d, want offset %d", i, p.ErrorCode, p.BaseOffset, i)
		}
	}
}

func TestProduceWithoutSyncFlushAnswersBeforeDurability(t *testing.T) {
	b := startTestBroker(t, func(c *Config) { c.ProduceSyncFlush = false })
	b.createTopic(t, "async", 1)
	b.log.hold = make(chan struct{}) // never released: an answer proves no wait
	defer close(b.log.hold)
	c := b.dial(t)
	p := c.roundTrip(produceRequest(-1, "async", 0, makeBatch(1, "a"))).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("error %v", kerr.ErrorForCode(p.ErrorCode))
	}
}

func TestProduceDurabilityTimeoutIsRequestTimedOut(t *testing.T) {
	b := startTestBroker(t)
	b.createTopic(t, "slow", 1)
	b.log.hold = make(chan struct{})
	defer close(b.log.hold)
	c := b.dial(t)
	req := produceRequest(-1, "slow", 0, makeBatch(1, "a"))
	req.TimeoutMillis = 1
	p := c.roundTrip(req).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	if p.ErrorCode != kerr.RequestTimedOut.Code {
		t.Fatalf("error %v, want REQUEST_TIMED_OUT", kerr.ErrorForCode(p.ErrorCode))
	}
}

func TestCheckBatchesCountsRecords(t *testing.T) {
	two := append(makeBatch(1, "a", "b", "c"), makeBatch(2, "d")...)
	n, err := checkBatches(two, math.MaxInt64)
	if err != nil || n != 4 {
		t.Fatalf("got %d records, %v; want 4", n, err)
	}
}

// A batch larger than the topic's max.message.bytes is refused with MESSAGE_TOO_LARGE, as
// Kafka does; one of exactly that size is accepted.
func TestCheckBatchesEnforcesMaxMessageBytes(t *testing.T) {
	b := makeBatch(1, "a", "b", "c")
	size := int64(len(b))
	if _, err := checkBatches(b, size); err != nil {
		t.Fatalf("batch of exactly max.message.bytes refused: %v", err)
	}
	_, err := checkBatches(b, size-1)
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("batch over max.message.bytes: %v, want MESSAGE_TOO_LARGE", err)
	}
	topic := &metadata.Topic{Configs: map[string]string{"max.message.bytes": "51200"}}
	if got := topicMaxMessageBytes(topic); got != 51200 {
		t.Fatalf("topic limit %d, want 51200", got)
	}
	if got := topicMaxMessageBytes(&metadata.Topic{}); got != 1048588 {
		t.Fatalf("default limit %d, want Kafka's 1048588", got)
	}
}

func TestProduceAcksZeroIsAppendedEvenWhenTheClientLeavesAtOnce(t *testing.T) {
	b := startTestBroker(t)
	b.createTopic(t, "gone", 1)
	c := b.dial(t)
	c.send(produceRequest(0, "gone", 0, makeBatch(1, "a")))
	c.nc.Close()
	for {
		changed := b.log.Changed()
		if _, hw, _ := b.log.Offsets(t.Context(), "gone", 0); hw == 1 {
			return
		}
		<-changed
	}
}
