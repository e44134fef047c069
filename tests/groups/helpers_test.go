// Package groups_test runs consumer groups of real Kafka clients (kcat/librdkafka, sarama,
// kafka-go, franz-go) against brokers backed by a real etcd and a real S3 server.
package groups_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kafscale/kafscale/broker/app"
	"github.com/kafscale/kafscale/broker/config"
	"github.com/kafscale/kafscale/broker/groups"
	"github.com/kafscale/kafscale/broker/partition"
	"github.com/kafscale/kafscale/broker/server"
	"github.com/kafscale/kafscale/broker/storage"
	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/kafscale/kafscale/tests/testenv"
)

// cluster is a real etcd and S3 server shared by the brokers of one test.
type cluster struct {
	t    *testing.T
	etcd *testenv.Etcd
	s3   *testenv.S3
	cli  *clientv3.Client
	keys metadata.Keys
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t, etcd: testenv.StartEtcd(t), s3: testenv.StartS3(t)}
	c.cli = c.etcd.Client()
	c.keys = metadata.Keys{Namespace: "test", Cluster: strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))}
	return c
}

// broker is one in-process broker wired as broker/main.go wires it: metadata store with
// registration and controller, S3 store, partition manager, group coordinator, Kafka server.
type broker struct {
	c      *cluster
	node   int32
	port   int
	cancel context.CancelFunc
	done   chan struct{}

	meta    *metadata.Store
	objects *storage.Store
	log     *partition.Manager
	coord   *groups.Coordinator
	srv     *server.Server
	reg     *metadata.Registration
	stopped bool
}

func logger(t *testing.T, node int32) *slog.Logger {
	if os.Getenv("KAFSCALE_TEST_VERBOSE") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", node, "test", t.Name())
}

// startBroker starts broker node on port (0: a free one) and waits until the cluster
// snapshot lists it.
func (c *cluster) startBroker(node int32, port int) *broker {
	t := c.t
	t.Helper()
	if port == 0 {
		port = testenv.FreePort(t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &broker{c: c, node: node, port: port, cancel: cancel, done: make(chan struct{})}
	lg := logger(t, node)
	var err error
	if b.meta, err = metadata.NewStore(ctx, c.cli, c.keys, metadata.StoreOptions{RequestTimeout: 2 * time.Second, Logger: lg}); err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.NodeID = node
	sopts := app.StorageOptions(cfg)
	sopts.Bucket, sopts.Region, sopts.Endpoint, sopts.PathStyle = c.s3.Bucket, c.s3.Region, c.s3.Endpoint, true
	sopts.AccessKey, sopts.SecretKey, sopts.Namespace, sopts.RequestTimeout = c.s3.AccessKey, c.s3.SecretKey, "ns", 5*time.Second
	if b.objects, err = storage.New(ctx, sopts); err != nil {
		t.Fatal(err)
	}
	popts := app.PartitionOptions(cfg)
	popts.FlushInterval, popts.CommitTimeout, popts.Logger = 20*time.Millisecond, 2*time.Second, lg
	if b.log, err = partition.NewManager(ctx, popts, c.cli, c.keys, b.objects); err != nil {
		t.Fatal(err)
	}
	b.meta.OnSnapshot(b.log.Apply)
	gopts := app.GroupOptions(cfg)
	gopts.RequestTimeout, gopts.InitialRebalanceDelay, gopts.Logger = 2*time.Second, 500*time.Millisecond, lg
	if b.coord, err = groups.New(c.cli, c.keys, b.meta.Snapshot, gopts); err != nil {
		t.Fatal(err)
	}
	b.meta.OnSnapshot(b.coord.Apply)
	scfg := app.ServerConfig(cfg)
	scfg.AutoCreateTopics, scfg.MaxInflightRequestBytes = false, 0
	if b.srv, err = server.New(scfg, b.log, b.meta, lg, nil); err != nil {
		t.Fatal(err)
	}
	b.srv.SetGroups(b.coord)

	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = b.srv.Serve(ln) }()
	if b.reg, err = b.meta.Register(ctx, metadata.Broker{NodeID: node, Host: "127.0.0.1", Port: int32(port)}, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(b.done)
		_ = b.meta.RunController(ctx, node, metadata.ControllerOptions{SessionTTL: 2 * time.Second, Resync: 200 * time.Millisecond})
	}()
	testenv.Eventually(t, 30*time.Second, func() error {
		if b.meta.Snapshot().Broker(node) == nil {
			return fmt.Errorf("broker %d not in the snapshot yet", node)
		}
		return nil
	})
	t.Cleanup(b.stop)
	return b
}

func (b *broker) addr() string { return fmt.Sprintf("127.0.0.1:%d", b.port) }

// stop drains the broker as SIGTERM does: groups answer NOT_COORDINATOR, the server stops,
// buffered data is flushed, the registration is released.
func (b *broker) stop() {
	if b.stopped {
		return
	}
	b.stopped = true
	b.coord.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = b.srv.Shutdown(ctx)
	_ = b.log.Drain(ctx)
	_ = b.log.Close()
	_ = b.reg.Close(ctx)
	b.cancel()
	<-b.done
	b.meta.Close()
	b.objects.Close()
}

// createTopic creates a topic and waits until every partition has a leader serving it.
func (c *cluster) createTopic(b *broker, name string, partitions int32) {
	t := c.t
	t.Helper()
	if err := b.meta.CreateTopic(testenv.Context(t, 10*time.Second), name, partitions, nil); err != nil {
		t.Fatal(err)
	}
	cl := c.client(b, nil)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	testenv.Eventually(t, 30*time.Second, func() error {
		offs, err := adm.ListEndOffsets(testenv.Context(t, 5*time.Second), name)
		if err != nil {
			return err
		}
		if err := offs.Error(); err != nil {
			return err
		}
		if n := len(offs[name]); n != int(partitions) {
			return fmt.Errorf("%d of %d partitions answer", n, partitions)
		}
		return nil
	})
}

// client is a franz-go client seeded with the brokers.
func (c *cluster) client(b *broker, extra []kgo.Opt, more ...*broker) *kgo.Client {
	c.t.Helper()
	seeds := []string{b.addr()}
	for _, o := range more {
		seeds = append(seeds, o.addr())
	}
	opts := append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.RequestTimeoutOverhead(5 * time.Second), kgo.RetryTimeout(30 * time.Second)}, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// produce writes count records "<prefix>-<i>" round-robin over the topic's partitions and
// returns their values.
func (c *cluster) produce(b *broker, topic string, partitions int32, prefix string, count int) []string {
	t := c.t
	t.Helper()
	cl := c.client(b, []kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DisableIdempotentWrite()})
	defer cl.Close()
	var recs []*kgo.Record
	var values []string
	for i := range count {
		v := prefix + "-" + strconv.Itoa(i)
		recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(i) % partitions, Value: []byte(v)})
		values = append(values, v)
	}
	if err := cl.ProduceSync(testenv.Context(t, 60*time.Second), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	return values
}

// committed returns a group's committed offsets as topic → partition → offset.
func (c *cluster) committed(b *broker, group string) map[string]map[int32]int64 {
	c.t.Helper()
	cl := c.client(b, nil)
	defer cl.Close()
	return c.committedVia(kadm.NewClient(cl), group)
}

func (c *cluster) committedVia(adm *kadm.Client, group string) map[string]map[int32]int64 {
	t := c.t
	t.Helper()
	resp, err := adm.FetchOffsets(testenv.Context(t, 30*time.Second), group)
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	out := map[string]map[int32]int64{}
	resp.Each(func(o kadm.OffsetResponse) {
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]int64{}
		}
		out[o.Topic][o.Partition] = o.At
	})
	return out
}

func sum(m map[int32]int64) (n int64) {
	for _, v := range m {
		n += v
	}
	return n
}

// seen tracks consumed values and reports duplicates.
type seen struct {
	byValue map[string]string // value → consumer
	dups    []string
}

func newSeen() *seen { return &seen{byValue: map[string]string{}} }

func (s *seen) add(consumer, value string) {
	if prev, ok := s.byValue[value]; ok {
		s.dups = append(s.dups, fmt.Sprintf("%s (by %s and %s)", value, prev, consumer))
		return
	}
	s.byValue[value] = consumer
}

func (s *seen) missing(values []string) []string {
	var out []string
	for _, v := range values {
		if _, ok := s.byValue[v]; !ok {
			out = append(out, v)
		}
	}
	return out
}

func kadmClient(cl *kgo.Client) *kadm.Client { return kadm.NewClient(cl) }

// storedGroup reads a group's document from etcd.
func (c *cluster) storedGroup(group string) groups.GroupDocument {
	c.t.Helper()
	resp, err := c.cli.Get(testenv.Context(c.t, 10*time.Second), c.keys.Group(group))
	if err != nil || len(resp.Kvs) != 1 {
		c.t.Fatalf("group %s in etcd: %v (%d keys)", group, err, len(resp.Kvs))
	}
	var doc groups.GroupDocument
	if err := json.Unmarshal(resp.Kvs[0].Value, &doc); err != nil {
		c.t.Fatal(err)
	}
	return doc
}
