package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRestartKeepsEveryRecord stops the broker with SIGTERM (drain) and starts it again:
// every record is still there at the same offset.
func TestRestartKeepsEveryRecord(t *testing.T) {
	be := startBackend(t)
	b := be.startBroker(t, 0, "KAFSCALE_AUTO_CREATE_PARTITIONS=2")
	ctx := testContext(t, 3*time.Minute)
	want := makeRecords("restart", 2000)
	produceFranz(t, ctx, b.Addr, "restart", want)
	before := consumeFranz(t, ctx, b.Addr, "restart", len(want))
	checkReadBack(t, want, before)

	b.Stop()
	b.Start()
	after := consumeFranz(t, ctx, b.Addr, "restart", len(want))
	checkReadBack(t, want, after)
	at := map[string]record{}
	for _, r := range before {
		at[r.key] = r
	}
	for _, r := range after {
		if p := at[r.key]; p.partition != r.partition || p.offset != r.offset {
			t.Fatalf("%s moved from %d/%d to %d/%d across the restart", r.key, p.partition, p.offset, r.partition, r.offset)
		}
	}
	// New records continue the offsets.
	more := makeRecords("restart-more", 100)
	produceFranz(t, ctx, b.Addr, "restart", more)
	checkReadBack(t, append(want, more...), consumeFranz(t, ctx, b.Addr, "restart", len(want)+len(more)))
}

// TestKill9LosesNoAcknowledgedRecord kills the broker with SIGKILL while producers run.
// Every record the broker acknowledged is readable after the restart, at the offset it was
// acknowledged with, and every partition's offsets are dense.
func TestKill9LosesNoAcknowledgedRecord(t *testing.T) {
	be := startBackend(t)
	b := be.startBroker(t, 0, "KAFSCALE_AUTO_CREATE_PARTITIONS=3")
	ctx := testContext(t, 3*time.Minute)
	createTopic(t, b.Addr, "crash", 3)

	var mu sync.Mutex
	acked := map[string]record{}
	produced := make(chan struct{}) // closed once some records are acknowledged
	var producedOnce sync.Once
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.DefaultProduceTopic("crash"),
				kgo.RecordRetries(0), kgo.RequestRetries(0), kgo.DisableIdempotentWrite())
			if err != nil {
				t.Error(err)
				return
			}
			defer cl.Close()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("w%d-%06d", w, i)
				r := &kgo.Record{Key: []byte(key), Value: []byte("v-" + key)}
				cl.Produce(ctx, r, func(r *kgo.Record, err error) {
					if err != nil {
						return
					}
					mu.Lock()
					acked[key] = record{partition: r.Partition, offset: r.Offset, key: key, value: string(r.Value)}
					n := len(acked)
					mu.Unlock()
					if n >= 3000 {
						producedOnce.Do(func() { close(produced) })
					}
				})
				if i%50 == 49 {
					_ = cl.Flush(ctx) // keep a bounded number in flight
				}
			}
		}()
	}
	select {
	case <-produced:
	case <-ctx.Done():
		t.Fatal("no records acknowledged")
	}
	b.Kill()
	close(stop)
	wg.Wait()
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	t.Logf("%d records acknowledged before SIGKILL", n)

	b.Start()
	got := consumeAll(t, ctx, b.Addr, "crash")
	checkDense(t, got)
	checkAckedReadBack(t, got, acked)
}

func produceFranz(t *testing.T, ctx context.Context, addr, topic string, recs []record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var krs []*kgo.Record
	for _, r := range recs {
		krs = append(krs, &kgo.Record{Key: []byte(r.key), Value: []byte(r.value), Headers: kgoHeaders(r.headers)})
	}
	if err := cl.ProduceSync(ctx, krs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// consumeAll reads every partition of topic up to its high watermark at the time of the call.
func consumeAll(t *testing.T, ctx context.Context, addr, topic string) []record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends := map[int32]int64{}
	offs, err := listEnds(ctx, addr, topic)
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	for p, e := range offs {
		ends[p] = e
		total += e
	}
	var got []record
	for int64(len(got)) < total {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("read %d of %d records before the test deadline", len(got), total)
			}
			t.Fatalf("poll: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < ends[r.Partition] {
				got = append(got, record{partition: r.Partition, offset: r.Offset, key: string(r.Key), value: string(r.Value)})
			}
		})
	}
	return got
}

// listEnds returns each partition's high watermark.
func listEnds(ctx context.Context, addr, topic string) (map[int32]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	meta, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.ReplicaID = -1
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = topic
	for _, p := range meta.Topics[0].Partitions {
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition, lp.Timestamp = p.Partition, -1
		lt.Partitions = append(lt.Partitions, lp)
	}
	lo.Topics = append(lo.Topics, lt)
	resp, err := lo.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	for _, p := range resp.Topics[0].Partitions {
		if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
			return nil, fmt.Errorf("list offsets %s/%d: %w", topic, p.Partition, err)
		}
		out[p.Partition] = p.Offset
	}
	return out, nil
}
