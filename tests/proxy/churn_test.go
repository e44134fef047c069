package proxy

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/kafscale/kafscale/tests/proxytest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// churnRecords is how many records TestChurn produces.
const churnRecords = 100000

// TestChurn: an idempotent franz-go producer writes 100,000 records through one proxy and a
// consumer group reads and commits through the other while the brokers churn: each of the
// three is drained (SIGTERM) and restarted in turn, then one is killed with SIGKILL and a
// fourth is added. The clients know only the proxies. Every acknowledged record is read back
// at the offset it was acknowledged at, in order per partition, exactly once; the group ends
// with its offsets at the end of every partition.
func TestChurn(t *testing.T) {
	c := startCluster(t, 3)
	pa := c.addProxy(t, proxytest.Options{})
	pb := c.addProxy(t, proxytest.Options{})
	ctx := testContext(t, 8*time.Minute)
	createTopic(t, ctx, pa.Addr, "churn", 12)

	// The churn steps, each started when the producer has handed over a share of the records.
	steps := []struct {
		name string
		do   func()
	}{
		{"drain and restart broker 0", func() { c.brokers[0].Stop(); c.brokers[0].Start() }},
		{"drain and restart broker 1", func() { c.brokers[1].Stop(); c.brokers[1].Start() }},
		{"drain and restart broker 2", func() { c.brokers[2].Stop(); c.brokers[2].Start() }},
		{"SIGKILL broker 2", func() { c.brokers[2].Kill() }},
		{"add broker 3", func() { c.addBroker(t, 3) }},
	}
	started := make([]chan struct{}, len(steps))
	for i := range started {
		started[i] = make(chan struct{})
	}
	churnDone := make(chan struct{})
	go func() {
		defer close(churnDone)
		for i, s := range steps {
			<-started[i]
			t.Logf("churn: %s", s.name)
			s.do()
		}
	}()

	// Producer: record i goes to partition i % 12, so each partition's keys ascend.
	prod := newClient(t, pa.Addr, kgo.DefaultProduceTopic("churn"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(5*time.Millisecond))
	var mu sync.Mutex
	acked := map[string]record{}
	var produceErr error
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		var wg sync.WaitGroup
		for i := 0; i < churnRecords; i++ {
			if k := i / (churnRecords / (len(steps) + 1)); i%(churnRecords/(len(steps)+1)) == 0 && k >= 1 && k <= len(steps) {
				close(started[k-1])
			}
			key := fmt.Sprintf("churn-%06d", i)
			wg.Add(1)
			prod.Produce(ctx, &kgo.Record{Key: []byte(key), Value: []byte("v" + key), Partition: int32(i % 12)}, func(r *kgo.Record, err error) {
				defer wg.Done()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if produceErr == nil {
						produceErr = fmt.Errorf("record %s: %w", key, err)
					}
					return
				}
				acked[key] = record{partition: r.Partition, offset: r.Offset, key: key, value: string(r.Value)}
			})
			if i%2000 == 1999 {
				time.Sleep(50 * time.Millisecond) // spread the records over the churn
			}
		}
		wg.Wait()
	}()

	// Consumer group through the other proxy, committing after every poll.
	cons := newClient(t, pb.Addr, kgo.ConsumeTopics("churn"), kgo.ConsumerGroup("churn-group"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	seen := map[string]bool{}
	for len(seen) < churnRecords {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("the group read %d of %d records before the deadline", len(seen), churnRecords)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("group fetch %s/%d: %v (retried)", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Key)] = true })
		if err := cons.CommitUncommittedOffsets(ctx); err != nil {
			t.Logf("group commit: %v (retried with the next poll)", err)
		}
	}
	<-produced
	<-churnDone
	if produceErr != nil {
		t.Fatalf("the producer gave up on a record: %v", produceErr)
	}
	if len(acked) != churnRecords {
		t.Fatalf("%d records acknowledged, want %d", len(acked), churnRecords)
	}
	waitFor(t, ctx, "the group's last commit", func() bool { return cons.CommitUncommittedOffsets(ctx) == nil })

	// Every acknowledged record, read back through the first proxy.
	reader := newClient(t, pa.Addr, kgo.ConsumeTopics("churn"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []record
	for len(got) < churnRecords {
		fs := reader.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read back %d of %d records before the deadline", len(got), churnRecords)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got = append(got, record{partition: r.Partition, offset: r.Offset, key: string(r.Key), value: string(r.Value)})
		})
	}
	byKey := map[string]record{}
	for _, r := range got {
		if _, dup := byKey[r.key]; dup {
			t.Fatalf("%s stored twice: the idempotent producer's retries were duplicated", r.key)
		}
		byKey[r.key] = r
	}
	for key, a := range acked {
		r, ok := byKey[key]
		if !ok {
			t.Fatalf("acknowledged record %s (partition %d offset %d) lost", key, a.partition, a.offset)
		}
		if r.partition != a.partition || r.offset != a.offset || r.value != a.value {
			t.Fatalf("%s acknowledged at %d/%d, read at %d/%d", key, a.partition, a.offset, r.partition, r.offset)
		}
	}
	parts := map[int32][]record{}
	for _, r := range got {
		parts[r.partition] = append(parts[r.partition], r)
	}
	for p, rs := range parts {
		sort.Slice(rs, func(i, j int) bool { return rs[i].offset < rs[j].offset })
		for i, r := range rs {
			if r.offset != int64(i) || (i > 0 && rs[i-1].key > r.key) {
				t.Fatalf("partition %d position %d: offset %d key %s after %s: not in the order produced", p, i, r.offset, r.key, rs[max(i-1, 0)].key)
			}
		}
	}

	// The group's offsets survived the coordinators moving: they are at every end.
	adm := kadm.NewClient(newClient(t, pb.Addr))
	ends, err := adm.ListEndOffsets(ctx, "churn")
	if err != nil {
		t.Fatal(err)
	}
	committed, err := adm.FetchOffsets(ctx, "churn-group")
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(e kadm.ListedOffset) {
		if o, ok := committed.Lookup("churn", e.Partition); !ok || o.At != e.Offset {
			t.Errorf("partition %d: the group's offset is %v (%v), want the end %d", e.Partition, o.At, ok, e.Offset)
		}
	})
	t.Logf("proxy A route refreshes %v, retriable errors answered %v", metricValue(pa.Metrics(), "kafscale_proxy_route_refreshes_total"),
		metricValue(pa.Metrics(), "kafscale_proxy_retriable_errors_total"))
}
