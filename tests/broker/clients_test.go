package broker

import (
	"bufio"
	"bytes"
	"context"
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
	"github.com/kafscale/kafscale/tests/testenv"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// record is what every client test writes and reads back.
type record struct {
	partition int32
	offset    int64
	key       string
	value     string
	headers   string // "k=v,k=v" in order
}

// makeRecords returns n records with unique keys and values of varied length.
func makeRecords(prefix string, n int) []record {
	out := make([]record, n)
	for i := range out {
		out[i] = record{
			key:     fmt.Sprintf("%s-key-%05d", prefix, i),
			value:   fmt.Sprintf("%s-value-%05d-%s", prefix, i, strings.Repeat("x", i%97)),
			headers: fmt.Sprintf("origin=%s,seq=%d", prefix, i),
		}
	}
	return out
}

// checkReadBack asserts that got holds exactly want (matched by key, byte for byte) and that
// every partition's offsets run densely from 0.
func checkReadBack(t *testing.T, want, got []record) {
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
		if g.value != w.value || g.headers != w.headers {
			t.Fatalf("key %s: read value %q headers %q, want %q %q", w.key, g.value, g.headers, w.value, w.headers)
		}
	}
	checkDense(t, got)
}

// checkDense asserts that each partition's offsets are 0, 1, 2, ... with no gap.
// checkAckedReadBack fails unless every acknowledged record (by key) was read back at the
// partition and offset its acknowledgement gave, with its value.
func checkAckedReadBack(t *testing.T, got []record, acked map[string]record) {
	t.Helper()
	at := map[string]record{}
	for _, r := range got {
		at[r.key] = r
	}
	for key, a := range acked {
		r, ok := at[key]
		if !ok {
			t.Fatalf("acknowledged record %s (partition %d offset %d) lost", key, a.partition, a.offset)
		}
		if r.partition != a.partition || r.offset != a.offset || r.value != a.value {
			t.Fatalf("%s acknowledged at %d/%d, read at %d/%d value %q", key, a.partition, a.offset, r.partition, r.offset, r.value)
		}
	}
}

func checkDense(t *testing.T, got []record) {
	t.Helper()
	offsets := map[int32][]int64{}
	for _, r := range got {
		offsets[r.partition] = append(offsets[r.partition], r.offset)
	}
	for p, os := range offsets {
		sort.Slice(os, func(i, j int) bool { return os[i] < os[j] })
		for i, o := range os {
			if o != int64(i) {
				t.Fatalf("partition %d: offset %d at position %d, offsets not dense from 0", p, o, i)
			}
		}
	}
}

func createTopic(t *testing.T, addr, topic string, partitions int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 1
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 30000
	resp, err := req.RequestWith(testContext(t, time.Minute), cl)
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
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

// TestClients runs every client library against one broker: each writes its own topic and
// reads it back byte for byte, and franz-go also reads what kcat wrote.
func TestClients(t *testing.T) {
	kcat := kcatPath(t)
	be := startBackend(t)
	b := be.startBroker(t, 0, "KAFSCALE_AUTO_CREATE_PARTITIONS=3")

	var kcatRecords []record
	t.Run("kcat", func(t *testing.T) {
		out, err := exec.Command(kcat, "-b", b.Addr, "-L").CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("broker 0 at "+b.Addr)) {
			t.Fatalf("kcat -L: %v\n%s", err, out)
		}
		kcatRecords = makeRecords("kcat", 10000)
		var in bytes.Buffer
		for _, r := range kcatRecords {
			fmt.Fprintf(&in, "%s:%s\n", r.key, r.value)
		}
		// kcat gives every record the same -H headers; the per-record header is checked by
		// the library tests below.
		for i := range kcatRecords {
			kcatRecords[i].headers = "origin=kcat,trace=t-1"
		}
		produce := exec.Command(kcat, "-b", b.Addr, "-P", "-t", "kcat", "-K", ":", "-H", "origin=kcat", "-H", "trace=t-1",
			"-X", "acks=all", "-X", "topic.partitioner=murmur2_random")
		produce.Stdin = &in
		if out, err := produce.CombinedOutput(); err != nil {
			t.Fatalf("kcat -P: %v\n%s", err, out)
		}
		consume := exec.Command(kcat, "-b", b.Addr, "-C", "-t", "kcat", "-o", "beginning", "-e", "-q",
			"-f", "%p\t%o\t%k\t%s\t%h\n")
		out, err = consume.Output()
		if err != nil {
			t.Fatalf("kcat -C: %v", err)
		}
		var got []record
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			f := strings.Split(sc.Text(), "\t")
			if len(f) != 5 {
				t.Fatalf("kcat output line %q", sc.Text())
			}
			p, _ := strconv.Atoi(f[0])
			o, _ := strconv.ParseInt(f[1], 10, 64)
			got = append(got, record{partition: int32(p), offset: o, key: f[2], value: f[3], headers: f[4]})
		}
		checkReadBack(t, kcatRecords, got)
		partitions := map[int32]bool{}
		for _, r := range got {
			partitions[r.partition] = true
		}
		if len(partitions) != 3 {
			t.Fatalf("records landed in %d partitions, want all 3", len(partitions))
		}
	})

	t.Run("franz-go", func(t *testing.T) {
		ctx := testContext(t, 2*time.Minute)
		want := makeRecords("franz", 5000)
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.DefaultProduceTopic("franz"), kgo.AllowAutoTopicCreation())
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var recs []*kgo.Record
		for _, r := range want {
			recs = append(recs, &kgo.Record{Key: []byte(r.key), Value: []byte(r.value), Headers: kgoHeaders(r.headers)})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		checkReadBack(t, want, consumeFranz(t, ctx, b.Addr, "franz", len(want)))
		// And what kcat (librdkafka) wrote, through franz-go.
		if kcatRecords != nil {
			checkReadBack(t, kcatRecords, consumeFranz(t, ctx, b.Addr, "kcat", len(kcatRecords)))
		}
	})

	t.Run("sarama", func(t *testing.T) {
		want := makeRecords("sarama", 3000)
		createTopic(t, b.Addr, "sarama", 3)
		cfg := sarama.NewConfig()
		cfg.Version = sarama.V2_8_0_0
		cfg.Producer.RequiredAcks = sarama.WaitForAll
		cfg.Producer.Return.Successes = true
		cfg.Producer.Partitioner = sarama.NewHashPartitioner
		producer, err := sarama.NewSyncProducer([]string{b.Addr}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		var msgs []*sarama.ProducerMessage
		for _, r := range want {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: "sarama", Key: sarama.StringEncoder(r.key),
				Value: sarama.StringEncoder(r.value), Headers: saramaHeaders(r.headers)})
		}
		for start := 0; start < len(msgs); start += 500 {
			if err := producer.SendMessages(msgs[start : start+500]); err != nil {
				t.Fatalf("sarama produce: %v", err)
			}
		}
		producer.Close()

		consumer, err := sarama.NewConsumer([]string{b.Addr}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer consumer.Close()
		client, err := sarama.NewClient([]string{b.Addr}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		var got []record
		for p := int32(0); p < 3; p++ {
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
				var hs []string
				for _, h := range m.Headers {
					hs = append(hs, string(h.Key)+"="+string(h.Value))
				}
				got = append(got, record{partition: m.Partition, offset: m.Offset, key: string(m.Key), value: string(m.Value), headers: strings.Join(hs, ",")})
				if m.Offset == end-1 {
					break
				}
			}
			pc.Close()
		}
		checkReadBack(t, want, got)
	})

	t.Run("kafka-go", func(t *testing.T) {
		ctx := testContext(t, 2*time.Minute)
		want := makeRecords("kafkago", 3000)
		createTopic(t, b.Addr, "kafkago", 3)
		w := &kafkago.Writer{
			Addr:         kafkago.TCP(b.Addr),
			Topic:        "kafkago",
			Balancer:     &kafkago.Hash{},
			RequiredAcks: kafkago.RequireAll,
			BatchTimeout: 5 * time.Millisecond,
		}
		var msgs []kafkago.Message
		for _, r := range want {
			msgs = append(msgs, kafkago.Message{Key: []byte(r.key), Value: []byte(r.value), Headers: kafkagoHeaders(r.headers)})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatalf("kafka-go write: %v", err)
		}
		w.Close()

		var got []record
		for p := 0; p < 3; p++ {
			conn, err := kafkago.DialLeader(ctx, "tcp", b.Addr, "kafkago", p)
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
			r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: []string{b.Addr}, Topic: "kafkago", Partition: p, MaxWait: 500 * time.Millisecond})
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					t.Fatalf("kafka-go read partition %d: %v", p, err)
				}
				var hs []string
				for _, h := range m.Headers {
					hs = append(hs, h.Key+"="+string(h.Value))
				}
				got = append(got, record{partition: int32(m.Partition), offset: m.Offset, key: string(m.Key), value: string(m.Value), headers: strings.Join(hs, ",")})
				if m.Offset == end-1 {
					break
				}
			}
			r.Close()
		}
		checkReadBack(t, want, got)
	})

	t.Run("metrics", func(t *testing.T) {
		text := b.Metrics(t)
		for _, name := range []string{"kafscale_produce_rps", "kafscale_s3_health_state 0", "kafscale_request_duration_seconds_bucket{api=\"Produce\"",
			"kafscale_requests_total{api=\"Fetch\"}", "kafscale_flushes_total"} {
			if !strings.Contains(text, name) {
				t.Errorf("/metrics lacks %s", name)
			}
		}
		// The flushes that made the produces above durable were timed.
		for _, name := range []string{"kafscale_flush_upload_seconds_count", "kafscale_etcd_commit_seconds_count"} {
			var n float64
			for _, line := range strings.Split(text, "\n") {
				if strings.HasPrefix(line, name+" ") {
					n, _ = strconv.ParseFloat(strings.Fields(line)[1], 64)
				}
			}
			if n < 1 {
				t.Errorf("%s is %v after acknowledged produces: their flushes were not observed", name, n)
			}
		}
		// Every kafscale_* series is documented in docs/metrics.md.
		root, err := testenv.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		doc, err := os.ReadFile(filepath.Join(root, "docs", "metrics.md"))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(text, "\n") {
			if !strings.HasPrefix(line, "# TYPE kafscale_") {
				continue
			}
			name := strings.Fields(line)[2]
			if !strings.Contains(string(doc), "`"+name+"`") {
				t.Errorf("%s is exposed but not documented in docs/metrics.md", name)
			}
		}
	})
}

func consumeFranz(t *testing.T, ctx context.Context, addr, topic string, n int) []record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []record
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("poll %s: %v (after %d records)", topic, err, len(got))
		}
		fs.EachRecord(func(r *kgo.Record) {
			var hs []string
			for _, h := range r.Headers {
				hs = append(hs, h.Key+"="+string(h.Value))
			}
			got = append(got, record{partition: r.Partition, offset: r.Offset, key: string(r.Key), value: string(r.Value), headers: strings.Join(hs, ",")})
		})
	}
	return got
}

func splitHeaders(s string) [][2]string {
	var out [][2]string
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		out = append(out, [2]string{k, v})
	}
	return out
}

func kgoHeaders(s string) []kgo.RecordHeader {
	var out []kgo.RecordHeader
	for _, h := range splitHeaders(s) {
		out = append(out, kgo.RecordHeader{Key: h[0], Value: []byte(h[1])})
	}
	return out
}

func saramaHeaders(s string) []sarama.RecordHeader {
	var out []sarama.RecordHeader
	for _, h := range splitHeaders(s) {
		out = append(out, sarama.RecordHeader{Key: []byte(h[0]), Value: []byte(h[1])})
	}
	return out
}

func kafkagoHeaders(s string) []kafkago.Header {
	var out []kafkago.Header
	for _, h := range splitHeaders(s) {
		out = append(out, kafkago.Header{Key: h[0], Value: []byte(h[1])})
	}
	return out
}
