package storage_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafscale/kafscale/broker/partition"
	"github.com/kafscale/kafscale/broker/storage"
	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/kafscale/kafscale/tests/testenv"
)

// S3 down: the flush fails with KAFKA_STORAGE_ERROR, health turns unavailable and appends
// fail fast; reads of cached data keep working. S3 back: health recovers on its own and
// appends continue with dense offsets.
func TestS3OutageGatesProduceAndRecovers(t *testing.T) {
	e := newEnv(t)
	objects, _ := e.store(t, nil)
	m := e.manager(t, 1, objects, nil)
	m.Apply(snapshot(1, 0, map[string]int{"s3out": 1}))
	waitLeading(t, m, "s3out", 0)
	mustAppend(t, m, "s3out", 0, batch("before-0", "before-1"), false)
	mustFlush(t, m)
	if _, values := readAll(t, m, "s3out", 0); len(values) != 2 {
		t.Fatalf("read %q", values)
	}

	e.s3.Stop()
	res := mustAppend(t, m, "s3out", 0, batch("during"), false)
	mustFlush(t, m)
	if err := res.Durable(testenv.Context(t, 30*time.Second)); !isKerr(err, kerr.KafkaStorageError) {
		t.Fatalf("append while S3 is down: %v, want KAFKA_STORAGE_ERROR", err)
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		if st := objects.Health(); st != storage.Unavailable {
			return fmt.Errorf("health %v", st)
		}
		return nil
	})
	if _, err := m.Append(testenv.Context(t, 10*time.Second), "s3out", 0, batch("rejected"), true); !isKerr(err, kerr.KafkaStorageError) {
		t.Fatalf("append while unavailable: %v, want KAFKA_STORAGE_ERROR", err)
	}
	// The committed data is in the cache (written through at flush): still served.
	offsets, values := readAll(t, m, "s3out", 0)
	if fmt.Sprint(values) != "[before-0 before-1]" {
		t.Fatalf("cached read during the outage: %v %q", offsets, values)
	}

	e.s3.Start()
	testenv.Eventually(t, 60*time.Second, func() error {
		if st := objects.Health(); st != storage.Healthy {
			return fmt.Errorf("health %v", st)
		}
		return nil
	})
	res = mustAppend(t, m, "s3out", 0, batch("after"), false)
	if res.BaseOffset != 2 {
		t.Fatalf("offset after the outage %d, want 2 (failed appends leave no gap)", res.BaseOffset)
	}
	mustFlush(t, m)
	if err := res.Durable(testenv.Context(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	offsets, values = readAll(t, m, "s3out", 0)
	assertDense(t, offsets)
	if fmt.Sprint(values) != "[before-0 before-1 after]" {
		t.Fatalf("read %q", values)
	}
	if st := objects.Stats(); st.PutErrors == 0 || st.Probes == 0 {
		t.Fatalf("stats %+v", st)
	}
}

// etcd down: commits and metadata writes fail with REQUEST_TIMED_OUT within the request's
// time, cached reads keep working; etcd back: appends continue with dense offsets.
func TestEtcdOutageTimesOutAndRecovers(t *testing.T) {
	e := newEnv(t)
	objects, _ := e.store(t, nil)
	m := e.manager(t, 1, objects, nil)
	meta, err := metadata.NewStore(context.Background(), e.cli, e.keys, metadata.StoreOptions{RequestTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(meta.Close)
	reg, err := meta.Register(context.Background(), metadata.Broker{NodeID: 1, Host: "127.0.0.1", Port: 9092}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close(context.Background()) })
	if err := meta.CreateTopic(testenv.Context(t, 10*time.Second), "etcdout", 1, nil); err != nil {
		t.Fatal(err)
	}
	meta.OnSnapshot(m.Apply)
	waitLeading(t, m, "etcdout", 0)
	mustAppend(t, m, "etcdout", 0, batch("v0"), false)
	mustFlush(t, m)

	e.etcd.Stop()
	res := mustAppend(t, m, "etcdout", 0, batch("during"), false)
	mustFlush(t, m)
	if err := res.Durable(testenv.Context(t, 30*time.Second)); !isKerr(err, kerr.RequestTimedOut) {
		t.Fatalf("append while etcd is down: %v, want REQUEST_TIMED_OUT", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	_, err = m.Append(ctx, "etcdout", 0, batch("blocked"), true)
	cancel()
	if !isKerr(err, kerr.RequestTimedOut) {
		t.Fatalf("append while the partition reloads: %v, want REQUEST_TIMED_OUT", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 3*time.Second)
	err = meta.CreateTopic(ctx, "other", 1, nil)
	cancel()
	if !isKerr(err, kerr.RequestTimedOut) {
		t.Fatalf("CreateTopic while etcd is down: %v, want REQUEST_TIMED_OUT", err)
	}
	if res, err := m.Read(testenv.Context(t, 10*time.Second), "etcdout", 0, 0, 1<<20); err != nil || len(res.Batches) == 0 {
		t.Fatalf("cached read while etcd is down: %d bytes, %v", len(res.Batches), err)
	}

	e.etcd.Start()
	var after int64
	testenv.Eventually(t, 60*time.Second, func() error {
		r, err := m.Append(testenv.Context(t, 10*time.Second), "etcdout", 0, batch("after"), false)
		if err != nil {
			return err
		}
		after = r.BaseOffset
		return nil
	})
	mustFlush(t, m)
	offsets, values := readAll(t, m, "etcdout", 0)
	assertDense(t, offsets)
	if after != int64(len(values)-1) || values[0] != "v0" || values[len(values)-1] != "after" {
		t.Fatalf("after etcd recovered: appended at %d, read %q", after, values)
	}
	// The registration lease may have expired during the outage; once the broker has
	// registered again, admin requests work.
	testenv.Eventually(t, 60*time.Second, func() error {
		err := meta.CreateTopic(testenv.Context(t, 10*time.Second), "other", 1, nil)
		if isKerr(err, kerr.TopicAlreadyExists) {
			return nil // an earlier attempt landed but its answer was lost
		}
		return err
	})
}

// The read replica is tried first; a miss there falls back to the primary (and is
// counted); once the replica holds the objects, reads stay on it.
func TestReadReplicaFallback(t *testing.T) {
	e := newEnv(t)
	replica := e.s3.Bucket + "-replica"
	if _, err := e.s3.Client().CreateBucket(testenv.Context(t, 10*time.Second), &s3.CreateBucketInput{Bucket: aws.String(replica)}); err != nil {
		t.Fatal(err)
	}
	writer, _ := e.store(t, nil)
	m := e.manager(t, 1, writer, nil)
	topics := map[string]int{"replica": 1}
	m.Apply(snapshot(1, 0, topics))
	waitLeading(t, m, "replica", 0)
	for i := 0; i < 3; i++ {
		mustAppend(t, m, "replica", 0, batch(fmt.Sprintf("v%d", i)), false)
		mustFlush(t, m)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	var observedReads atomic.Int64
	read := func() (*storage.Store, *counter) {
		observedReads.Store(0)
		objects, count := e.store(t, func(o *storage.Options) {
			o.ReadBucket = replica
			o.ObserveRead = func(time.Duration) { observedReads.Add(1) }
		})
		m := e.manager(t, 1, objects, func(o *partition.Options) { o.ReadaheadSegments = 0 })
		m.Apply(snapshot(1, 0, topics))
		waitLeading(t, m, "replica", 0)
		_, values := readAll(t, m, "replica", 0)
		if fmt.Sprint(values) != "[v0 v1 v2]" {
			t.Fatalf("read %q", values)
		}
		return objects, count
	}
	objects, count := read()
	if st := objects.Stats(); st.ReplicaFallbacks != 3 || count.replicaGets.Load() != 3 || count.primaryGets.Load() != 3 {
		t.Fatalf("empty replica: %d fallbacks, %d replica GETs, %d primary GETs; want 3 each", st.ReplicaFallbacks, count.replicaGets.Load(), count.primaryGets.Load())
	}
	// Every replica read missed (kafscale_s3_replica_miss_ratio), and every GET was timed
	// (kafscale_s3_read_latency_ms).
	if st := objects.Stats(); st.ReplicaMissRatio != 1 || observedReads.Load() != 6 || st.MeanLatency <= 0 {
		t.Fatalf("empty replica: miss ratio %g, %d GETs timed, mean latency %s; want 1, 6 and above 0", st.ReplicaMissRatio, observedReads.Load(), st.MeanLatency)
	}

	// Replicate the objects, as bucket replication would, and read with a cold cache.
	for _, key := range listSegments(t, e, e.s3.Bucket) {
		_, err := e.s3.Client().CopyObject(testenv.Context(t, 10*time.Second), &s3.CopyObjectInput{
			Bucket: aws.String(replica), Key: aws.String(key), CopySource: aws.String(e.s3.Bucket + "/" + key),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	objects, count = read()
	if st := objects.Stats(); st.ReplicaFallbacks != 0 || count.primaryGets.Load() != 0 || count.replicaGets.Load() != 3 {
		t.Fatalf("full replica: %d fallbacks, %d primary GETs, %d replica GETs", st.ReplicaFallbacks, count.primaryGets.Load(), count.replicaGets.Load())
	}
	if st := objects.Stats(); st.ReplicaMissRatio != 0 || observedReads.Load() != 3 {
		t.Fatalf("full replica: miss ratio %g, %d GETs timed; want 0 and 3", st.ReplicaMissRatio, observedReads.Load())
	}
}
