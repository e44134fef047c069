package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A real client library against the handlers: franz-go with its defaults (idempotent
// producer, fetch sessions, auto topic creation through Metadata).
func TestFranzGoRoundTrip(t *testing.T) {
	b := startTestBroker(t, func(c *Config) { c.AutoCreatePartitions = 3 })
	ctx := t.Context()
	producer, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("kgo"))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	const n = 2000
	var records []*kgo.Record
	for i := 0; i < n; i++ {
		records = append(records, &kgo.Record{Key: []byte(fmt.Sprint(i % 17)), Value: []byte(fmt.Sprint(i))})
	}
	if err := producer.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}

	consumer, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.ConsumeTopics("kgo"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	next := map[int32]int64{}
	got := 0
	for got < n {
		fs := consumer.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("poll: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next[r.Partition] {
				t.Fatalf("partition %d: offset %d, want %d", r.Partition, r.Offset, next[r.Partition])
			}
			next[r.Partition]++
			got++
		})
	}
	if len(next) != 3 {
		t.Fatalf("records landed in %d partitions, want 3", len(next))
	}
}

func TestShutdownAnswersWhatWasReadAndClosesConnections(t *testing.T) {
	b := startTestBroker(t)
	b.createTopic(t, "s", 1)
	c := b.dial(t)
	want := c.send(fetchRequest("s", 0, 0, 600000, 1))
	for b.srv.inflight.Load() == 0 { // the fetch is being handled (long polling)
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if got, resp := c.recv(); got != want || len(resp.(*kmsg.FetchResponse).Topics) != 1 {
		t.Fatalf("got answer %d, want the long-polling fetch %d answered", got, want)
	}
	c.expectClosed()
}
