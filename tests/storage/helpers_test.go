// Package storage_test exercises the broker's data path (internal/metadata,
// broker/storage, broker/partition) against a real etcd and a real S3 server.
package storage_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/twmb/franz-go/pkg/kerr"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kafscale/kafscale/broker/app"
	"github.com/kafscale/kafscale/broker/config"
	"github.com/kafscale/kafscale/broker/logapi"
	"github.com/kafscale/kafscale/broker/partition"
	"github.com/kafscale/kafscale/broker/storage"
	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/kafscale/kafscale/internal/recordbatch/rbtest"
	"github.com/kafscale/kafscale/tests/testenv"
)

// counter counts the S3 requests a store makes, by kind.
type counter struct {
	base                           http.RoundTripper
	segmentPuts, gets, primaryGets atomic.Int64
	replicaGets, ranged            atomic.Int64
	bucket, replica                string
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	switch {
	case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/segments/"):
		c.segmentPuts.Add(1)
	case r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/segments/"):
		c.gets.Add(1)
		if r.Header.Get("Range") != "" {
			c.ranged.Add(1)
		}
		if c.replica != "" && strings.HasPrefix(r.URL.Path, "/"+c.replica+"/") {
			c.replicaGets.Add(1)
		} else if strings.HasPrefix(r.URL.Path, "/"+c.bucket+"/") {
			c.primaryGets.Add(1)
		}
	}
	return c.base.RoundTrip(r)
}

type env struct {
	etcd *testenv.Etcd
	s3   *testenv.S3
	cli  *clientv3.Client
	keys metadata.Keys
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{etcd: testenv.StartEtcd(t), s3: testenv.StartS3(t)}
	e.cli = e.etcd.Client()
	e.keys = metadata.Keys{Namespace: "test", Cluster: strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))}
	return e
}

// store opens an S3 store on the test server, counting its requests.
func (e *env) store(t testing.TB, mod func(*storage.Options)) (*storage.Store, *counter) {
	t.Helper()
	c := &counter{base: http.DefaultTransport, bucket: e.s3.Bucket}
	opts := app.StorageOptions(config.Defaults())
	opts.Bucket, opts.Region, opts.Endpoint, opts.PathStyle = e.s3.Bucket, e.s3.Region, e.s3.Endpoint, true
	opts.AccessKey, opts.SecretKey, opts.Namespace = e.s3.AccessKey, e.s3.SecretKey, "ns"
	opts.RequestTimeout = 5 * time.Second
	// Latency thresholds far above anything a loaded test machine shows: health here
	// reacts to failures only, so the assertions do not depend on speed.
	opts.Health.ProbeInterval, opts.Health.LatencyWarn, opts.Health.LatencyCrit = 100*time.Millisecond, 30*time.Second, time.Minute
	opts.HTTPClient = &http.Client{Transport: c}
	if mod != nil {
		mod(&opts)
	}
	c.replica = opts.ReadBucket
	s, err := storage.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, c
}

// manager starts a partition manager. FlushInterval is long unless mod changes it, so
// flushes happen when a test calls Flush.
func (e *env) manager(t testing.TB, node int32, objects *storage.Store, mod func(*partition.Options)) *partition.Manager {
	t.Helper()
	opts := app.PartitionOptions(config.Defaults())
	opts.NodeID, opts.FlushInterval, opts.CommitTimeout, opts.ReadaheadSegments = node, time.Hour, 5*time.Second, 2
	if mod != nil {
		mod(&opts)
	}
	m, err := partition.NewManager(context.Background(), opts, e.cli, e.keys, objects)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// snapshot leads every partition of the topics from leader at epoch.
func snapshot(leader, epoch int32, topics map[string]int) *metadata.Snapshot {
	snap := &metadata.Snapshot{ClusterID: "test", ControllerID: -1, Brokers: []metadata.Broker{{NodeID: leader, Host: "127.0.0.1", Port: 9092}}}
	for name, n := range topics {
		t := metadata.Topic{Name: name}
		copy(t.ID[:], fmt.Sprintf("%-16s", name))
		for i := 0; i < n; i++ {
			t.Partitions = append(t.Partitions, metadata.Partition{ID: int32(i), Leader: leader, LeaderEpoch: epoch})
		}
		snap.Topics = append(snap.Topics, t)
	}
	snap.Normalize()
	return snap
}

func batch(values ...string) []byte {
	vs := make([][]byte, len(values))
	for i, v := range values {
		vs[i] = []byte(v)
	}
	return rbtest.Batch(vs, rbtest.Options{Timestamp: time.Now().UnixMilli()})
}

// waitLeading polls until the manager accepts reads of the partition (its claim is done).
func waitLeading(t testing.TB, m *partition.Manager, topic string, p int32) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		_, _, err := m.Offsets(context.Background(), topic, p)
		return err
	})
}

func mustAppend(t testing.TB, m *partition.Manager, topic string, p int32, b []byte, wait bool) logapi.AppendResult {
	t.Helper()
	res, err := m.Append(testenv.Context(t, 20*time.Second), topic, p, b, wait)
	if err != nil {
		t.Fatalf("append %s/%d: %v", topic, p, err)
	}
	return res
}

func mustFlush(t testing.TB, m *partition.Manager) {
	t.Helper()
	if err := m.Flush(testenv.Context(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
}

// readAll reads a partition from offset 0 to the high watermark and decodes it.
func readAll(t testing.TB, m *partition.Manager, topic string, p int32) ([]int64, []string) {
	t.Helper()
	var offsets []int64
	var values []string
	next := int64(0)
	for {
		res, err := m.Read(testenv.Context(t, 20*time.Second), topic, p, next, 1<<20)
		if err != nil {
			t.Fatalf("read %s/%d@%d: %v", topic, p, next, err)
		}
		if len(res.Batches) == 0 {
			if next != res.HighWatermark {
				t.Fatalf("read %s/%d@%d: empty below the high watermark %d", topic, p, next, res.HighWatermark)
			}
			return offsets, values
		}
		offs, vals, err := rbtest.Values(res.Batches)
		if err != nil {
			t.Fatal(err)
		}
		for i, o := range offs {
			if o >= next {
				offsets = append(offsets, o)
				values = append(values, string(vals[i]))
			}
		}
		next = offs[len(offs)-1] + 1
	}
}

func assertDense(t *testing.T, offsets []int64) {
	t.Helper()
	for i, o := range offsets {
		if o != int64(i) {
			t.Fatalf("offset %d at position %d: offsets are not dense from 0 (%v)", o, i, offsets)
		}
	}
}

func isKerr(err error, want *kerr.Error) bool {
	var ke *kerr.Error
	return errors.As(err, &ke) && ke == want
}

func listSegments(t *testing.T, e *env, bucket string) []string {
	t.Helper()
	out, err := e.s3.Client().ListObjectsV2(testenv.Context(t, 10*time.Second), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("ns/segments/")})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}
