package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/kafscale/kafscale/tests/proxytest"
	"github.com/kafscale/kafscale/tests/testenv"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// record is what the client tests write and read back.
type record struct {
	partition int32
	offset    int64
	key       string
	value     string
}

func makeRecords(prefix string, n int) []record {
	out := make([]record, n)
	for i := range out {
		out[i] = record{key: fmt.Sprintf("%s-key-%06d", prefix, i), value: fmt.Sprintf("%s-value-%06d-%s", prefix, i, strings.Repeat("x", i%61))}
	}
	return out
}

// checkReadBack asserts that got holds exactly want (by key, with its value), that every
// partition's offsets run densely from 0, and that records written in order to a partition
// (ascending keys) were read in that order.
func checkReadBack(t *testing.T, want, got []record, partitions int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("read %d records, want %d", len(got), len(want))
	}
	byKey := map[string]record{}
	for _, r := range got {
		if _, dup := byKey[r.key]; dup {
			t.Fatalf("key %s read twice", r.key)
		}
		byKey[r.key] = r
	}
	for _, w := range want {
		g, ok := byKey[w.key]
		if !ok {
			t.Fatalf("key %s never read", w.key)
		}
		if g.value != w.value {
			t.Fatalf("key %s: value %q, want %q", w.key, g.value, w.value)
		}
	}
	parts := map[int32][]record{}
	for _, r := range got {
		parts[r.partition] = append(parts[r.partition], r)
	}
	if len(parts) != partitions {
		t.Fatalf("records in %d partitions, want all %d", len(parts), partitions)
	}
	for p, rs := range parts {
		sort.Slice(rs, func(i, j int) bool { return rs[i].offset < rs[j].offset })
		for i, r := range rs {
			if r.offset != int64(i) {
				t.Fatalf("partition %d: offset %d at position %d, not dense from 0", p, r.offset, i)
			}
			if i > 0 && rs[i-1].key > r.key {
				t.Fatalf("partition %d: %s stored after %s, out of the order produced", p, r.key, rs[i-1].key)
			}
		}
	}
}

func kcatPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat is missing: run `make tools` (it installs the Debian kcat package)")
	}
	return path
}

// TestClientsThroughProxies: three brokers, two proxies, each behind a relay that records what
// clients receive. kcat, franz-go (idempotent producer, consumer group committing offsets),
// sarama and kafka-go each produce to and consume from a 12-partition topic through the
// proxies only; no byte they receive names a broker.
func TestClientsThroughProxies(t *testing.T) {
	kcat := kcatPath(t)
	c := startCluster(t, 3)
	var relays []*relay
	for i := 0; i < 2; i++ {
		r := startRelay(t)
		p := c.addProxy(t, proxytest.Options{AdvertisedPort: r.port()})
		r.to(p.Addr)
		relays = append(relays, r)
	}
	a, b := relays[0].addr(), relays[1].addr()
	ctx := testContext(t, 5*time.Minute)

	t.Run("metadata names only the proxy", func(t *testing.T) {
		cl := newClient(t, a)
		createTopic(t, ctx, a, "kcat", 12)
		m := metadata(t, ctx, cl, "kcat")
		if len(m.Brokers) != 1 || m.Brokers[0].NodeID != 0 || fmt.Sprintf("%s:%d", m.Brokers[0].Host, m.Brokers[0].Port) != a {
			t.Fatalf("brokers through the proxy: %+v, want one, node 0 at the proxy's %s", m.Brokers, a)
		}
		for _, p := range m.Topics[0].Partitions {
			if p.Leader != 0 || fmt.Sprint(p.Replicas) != "[0]" || p.LeaderEpoch < 0 {
				t.Fatalf("partition %d: leader %d replicas %v epoch %d, want the proxy (0) with the broker's epoch", p.Partition, p.Leader, p.Replicas, p.LeaderEpoch)
			}
		}
		// Behind it, the partitions are spread over the three brokers: the proxy splits.
		direct := metadata(t, ctx, newClient(t, c.brokers[0].Addr), "kcat")
		leaders := map[int32]bool{}
		for _, p := range direct.Topics[0].Partitions {
			leaders[p.Leader] = true
		}
		if len(leaders) != 3 {
			t.Fatalf("12 partitions led by %d brokers, want 3", len(leaders))
		}
		out, err := exec.CommandContext(ctx, kcat, "-b", a, "-L").CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte(" 1 brokers:")) || !bytes.Contains(out, []byte("broker 0 at "+a)) {
			t.Fatalf("kcat -L through the proxy: %v\n%s", err, out)
		}
	})

	t.Run("kcat", func(t *testing.T) {
		want := makeRecords("kcat", 3000)
		var in bytes.Buffer
		for _, r := range want {
			fmt.Fprintf(&in, "%s:%s\n", r.key, r.value)
		}
		produce := exec.CommandContext(ctx, kcat, "-b", a, "-P", "-t", "kcat", "-K", ":", "-X", "acks=all", "-X", "topic.partitioner=murmur2_random")
		produce.Stdin = &in
		if out, err := produce.CombinedOutput(); err != nil {
			t.Fatalf("kcat -P: %v\n%s", err, out)
		}
		out, err := exec.CommandContext(ctx, kcat, "-b", b, "-C", "-t", "kcat", "-o", "beginning", "-e", "-q", "-f", "%p\t%o\t%k\t%s\n").Output()
		if err != nil {
			t.Fatalf("kcat -C: %v", err)
		}
		var got []record
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			f := strings.Split(sc.Text(), "\t")
			if len(f) != 4 {
				t.Fatalf("kcat output line %q", sc.Text())
			}
			p, _ := strconv.Atoi(f[0])
			o, _ := strconv.ParseInt(f[1], 10, 64)
			got = append(got, record{partition: int32(p), offset: o, key: f[2], value: f[3]})
		}
		checkReadBack(t, want, got, 12)
	})

	t.Run("franz-go", func(t *testing.T) {
		createTopic(t, ctx, b, "franz", 12)
		want := makeRecords("franz", 6000)
		// franz-go's producer is idempotent by default; sequence numbers go through the proxy.
		prod := newClient(t, b, kgo.DefaultProduceTopic("franz"), kgo.RequiredAcks(kgo.AllISRAcks()))
		var recs []*kgo.Record
		for _, r := range want {
			recs = append(recs, &kgo.Record{Key: []byte(r.key), Value: []byte(r.value)})
		}
		if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		cons := newClient(t, a, kgo.ConsumeTopics("franz"), kgo.ConsumerGroup("franz-group"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
		var got []record
		for len(got) < len(want) {
			fs := cons.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatalf("poll: %v (after %d records)", err, len(got))
			}
			fs.EachRecord(func(r *kgo.Record) {
				got = append(got, record{partition: r.Partition, offset: r.Offset, key: string(r.Key), value: string(r.Value)})
			})
			if err := cons.CommitUncommittedOffsets(ctx); err != nil {
				t.Fatalf("commit: %v", err)
			}
		}
		checkReadBack(t, want, got, 12)
		// The group's committed offsets are the ends of every partition, read through the
		// other proxy.
		adm := kadm.NewClient(newClient(t, b))
		ends, err := adm.ListEndOffsets(ctx, "franz")
		if err != nil {
			t.Fatal(err)
		}
		committed, err := adm.FetchOffsets(ctx, "franz-group")
		if err != nil {
			t.Fatal(err)
		}
		ends.Each(func(e kadm.ListedOffset) {
			o, ok := committed.Lookup("franz", e.Partition)
			if !ok || o.At != e.Offset {
				t.Errorf("partition %d: committed %v (%v), want the end %d", e.Partition, o.At, ok, e.Offset)
			}
		})
	})

	t.Run("sarama", func(t *testing.T) {
		createTopic(t, ctx, a, "sarama", 12)
		want := makeRecords("sarama", 3000)
		cfg := sarama.NewConfig()
		cfg.Version = sarama.V2_8_0_0
		cfg.Producer.RequiredAcks = sarama.WaitForAll
		cfg.Producer.Return.Successes = true
		cfg.Producer.Partitioner = sarama.NewHashPartitioner
		producer, err := sarama.NewSyncProducer([]string{a}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		var msgs []*sarama.ProducerMessage
		for _, r := range want {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: "sarama", Key: sarama.StringEncoder(r.key), Value: sarama.StringEncoder(r.value)})
		}
		for start := 0; start < len(msgs); start += 500 {
			if err := producer.SendMessages(msgs[start : start+500]); err != nil {
				t.Fatalf("sarama produce: %v", err)
			}
		}
		producer.Close()
		client, err := sarama.NewClient([]string{b}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		consumer, err := sarama.NewConsumerFromClient(client)
		if err != nil {
			t.Fatal(err)
		}
		defer consumer.Close()
		var got []record
		for p := int32(0); p < 12; p++ {
			end, err := client.GetOffset("sarama", p, sarama.OffsetNewest)
			if err != nil {
				t.Fatal(err)
			}
			if end == 0 {
				continue
			}
			pc, err := consumer.ConsumePartition("sarama", p, sarama.OffsetOldest)
			if err != nil {
				t.Fatal(err)
			}
			for m := range pc.Messages() {
				got = append(got, record{partition: m.Partition, offset: m.Offset, key: string(m.Key), value: string(m.Value)})
				if m.Offset == end-1 {
					break
				}
			}
			pc.Close()
		}
		checkReadBack(t, want, got, 12)
	})

	t.Run("kafka-go", func(t *testing.T) {
		createTopic(t, ctx, b, "kafkago", 12)
		want := makeRecords("kafkago", 3000)
		w := &kafkago.Writer{Addr: kafkago.TCP(b), Topic: "kafkago", Balancer: &kafkago.Hash{}, RequiredAcks: kafkago.RequireAll, BatchTimeout: 5 * time.Millisecond}
		var msgs []kafkago.Message
		for _, r := range want {
			msgs = append(msgs, kafkago.Message{Key: []byte(r.key), Value: []byte(r.value)})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatalf("kafka-go write: %v", err)
		}
		w.Close()
		var got []record
		for p := 0; p < 12; p++ {
			conn, err := kafkago.DialLeader(ctx, "tcp", a, "kafkago", p)
			if err != nil {
				t.Fatal(err)
			}
			end, err := conn.ReadLastOffset()
			conn.Close()
			if err != nil {
				t.Fatal(err)
			}
			if end == 0 {
				continue
			}
			r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: []string{a}, Topic: "kafkago", Partition: p, MaxWait: 500 * time.Millisecond})
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					t.Fatalf("kafka-go read partition %d: %v", p, err)
				}
				got = append(got, record{partition: int32(m.Partition), offset: m.Offset, key: string(m.Key), value: string(m.Value)})
				if m.Offset == end-1 {
					break
				}
			}
			r.Close()
		}
		checkReadBack(t, want, got, 12)
	})

	t.Run("no broker address reaches a client", func(t *testing.T) {
		for i, r := range relays {
			got := r.received()
			if len(got) < 100000 {
				t.Fatalf("relay %d recorded only %d bytes: the clients did not go through it", i, len(got))
			}
			checkNoBrokerAddress(t, got, c.brokers)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		text := c.proxies[0].Metrics()
		for _, s := range []string{`kafscale_proxy_requests_total{api="Produce"}`, `kafscale_proxy_requests_total{api="Fetch"}`,
			`kafscale_proxy_request_duration_seconds_bucket{api="Metadata"`, "kafscale_proxy_broker_connections", "kafscale_proxy_client_received_bytes_total"} {
			if metricValue(text, s) <= 0 {
				t.Errorf("/metrics: %s is not positive:\n%s", s, testenv.GrepLines(text, "kafscale_proxy_"))
			}
		}
		root, err := testenv.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		doc, err := os.ReadFile(filepath.Join(root, "docs", "metrics.md"))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(line, "# TYPE kafscale_") {
				if name := strings.Fields(line)[2]; !strings.Contains(string(doc), "`"+name+"`") {
					t.Errorf("%s is exposed but not documented in docs/metrics.md", name)
				}
			}
		}
	})
}
