package storage_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kafscale/kafscale/broker/partition"
	"github.com/kafscale/kafscale/broker/storage"
	"github.com/kafscale/kafscale/internal/recordbatch"
	"github.com/kafscale/kafscale/internal/recordbatch/rbtest"
)

// Benchmarks of the data path against a real etcd and a real S3 server (versitygw on
// loopback). Wall-clock figures depend on the machine; the custom metrics do not:
//
//   - etcdB/flush: bytes of partition state written to etcd per flush (every flushed
//     partition's document), in the steady state (index and producer bounds reached);
//   - puts/flush: segment PUTs per flush.
//
// Run: go test ./tests/storage -run '^$' -bench . -benchtime 20x

// records1K returns n 1 KiB records as batches of per records each.
func records1K(n, per int) [][]byte {
	value := bytes.Repeat([]byte("x"), 1000)
	var out [][]byte
	for n > 0 {
		k := min(n, per)
		vs := make([][]byte, k)
		for i := range vs {
			vs[i] = value
		}
		out = append(out, rbtest.Batch(vs, rbtest.Options{Timestamp: time.Now().UnixMilli()}))
		n -= k
	}
	return out
}

// idempotentBatch is a batch of producer pid at epoch 0 starting at sequence seq.
func idempotentBatch(pid int64, seq int32, values ...[]byte) []byte {
	return rbtest.Batch(values, rbtest.Options{Timestamp: time.Now().UnixMilli(), Idempotent: true, ProducerID: pid, BaseSequence: seq})
}

// etcdStateBytes is the size of every partition state of topic: what one flush of all of
// them writes.
func etcdStateBytes(b *testing.B, e *env, topic string) int64 {
	resp, err := e.cli.Get(context.Background(), e.keys.Partition(topic, 0)[:len(e.keys.Partition(topic, 0))-1], clientv3.WithPrefix())
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, kv := range resp.Kvs {
		n += int64(len(kv.Value))
	}
	return n
}

// BenchmarkFlush: one flush of SegmentBytes (4 MiB) of 1 KiB records spread over N
// partitions, acks=all (every append waits for the commit). Reports MB/s of records and
// the etcd bytes one flush writes once the in-etcd index is full.
func BenchmarkFlush(b *testing.B) {
	for _, parts := range []int{1, 64} {
		b.Run(fmt.Sprintf("partitions=%d", parts), func(b *testing.B) {
			e := newEnv(b)
			objects, count := e.store(b, nil)
			topic := fmt.Sprintf("bench-%d", parts)
			m := e.manager(b, 1, objects, func(o *partition.Options) { o.CacheBytes = 64 << 20 })
			m.Apply(snapshot(1, 0, map[string]int{topic: parts}))
			for p := 0; p < parts; p++ {
				waitLeading(b, m, topic, int32(p))
			}
			// Warm up: fill every partition's in-etcd index to its steady state.
			small := batch("warm")
			for f := 0; f < 80; f++ {
				for p := 0; p < parts; p++ {
					mustAppend(b, m, topic, int32(p), small, false)
				}
				mustFlush(b, m)
			}
			perPart := (4 << 20) / 1024 / parts
			batches := records1K(perPart, 16)
			size := 0
			for _, x := range batches {
				size += len(x)
			}
			b.SetBytes(int64(size * parts))
			putsBefore := count.segmentPuts.Load()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				var durable []func(context.Context) error
				for p := 0; p < parts; p++ {
					for _, x := range batches {
						res := mustAppend(b, m, topic, int32(p), x, false)
						durable = append(durable, res.Durable)
					}
				}
				mustFlush(b, m)
				for _, d := range durable {
					if err := d(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(etcdStateBytes(b, e, topic)), "etcdB/flush")
			b.ReportMetric(float64(count.segmentPuts.Load()-putsBefore)/float64(b.N), "puts/flush")
		})
	}
}

// BenchmarkFlushIdempotent: a partition that has seen many idempotent producers (as a
// franz-go test run leaves them), of which a few append before each flush. Reports the etcd
// bytes one flush writes.
func BenchmarkFlushIdempotent(b *testing.B) {
	const producers, active = 500, 4
	e := newEnv(b)
	objects, _ := e.store(b, nil)
	m := e.manager(b, 1, objects, nil)
	m.Apply(snapshot(1, 0, map[string]int{"idem": 1}))
	waitLeading(b, m, "idem", 0)
	value := bytes.Repeat([]byte("y"), 1000)
	seq := make([]int32, producers)
	appendFrom := func(pid int) {
		mustAppend(b, m, "idem", 0, idempotentBatch(int64(1000+pid), seq[pid], value), false)
		seq[pid]++
	}
	for pid := 0; pid < producers; pid++ {
		appendFrom(pid)
		if pid%50 == 49 {
			mustFlush(b, m)
		}
	}
	mustFlush(b, m)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := 0; k < active; k++ {
			appendFrom((i*active + k) % producers)
		}
		mustFlush(b, m)
	}
	b.StopTimer()
	b.ReportMetric(float64(etcdStateBytes(b, e, "idem")), "etcdB/flush")
}

// BenchmarkProduce: producers keep 16 KiB batches of 1 KiB records coming to 8 partitions,
// acks=all (each waits for its commit, up to 8 MiB in flight, as pipelining
// client does), and flushes start on SegmentBytes (4 MiB) as in production. With
// parallelism > 1 the next object uploads while the previous one commits. putDelay adds
// latency to every segment PUT, as a real S3 has (loopback hides it; the machine's CPU is
// then the limit, not the pipeline).
func BenchmarkProduce(b *testing.B) {
	for _, tc := range []struct {
		par   int
		delay time.Duration
	}{{1, 0}, {4, 0}, {1, 100 * time.Millisecond}, {4, 100 * time.Millisecond}} {
		par := tc.par
		b.Run(fmt.Sprintf("putDelay=%s/parallelism=%d", tc.delay, par), func(b *testing.B) {
			const parts, inflight = 8, 512
			e := newEnv(b)
			objects, _ := e.store(b, func(o *storage.Options) {
				o.HTTPClient = &http.Client{Transport: slowPuts{base: http.DefaultTransport, delay: tc.delay}}
			})
			m := e.manager(b, 1, objects, func(o *partition.Options) {
				o.FlushParallelism = par
				o.FlushInterval = 50 * time.Millisecond
				o.CacheBytes = 64 << 20
			})
			m.Apply(snapshot(1, 0, map[string]int{"produce": parts}))
			for p := 0; p < parts; p++ {
				waitLeading(b, m, "produce", int32(p))
			}
			x := records1K(16, 16)[0]
			// Enough batches for 16 objects per b.N.
			total := b.N * 16 * (4 << 20) / len(x)
			b.SetBytes(int64(16 * (4 << 20)))
			b.ReportAllocs()
			b.ResetTimer()
			sem := make(chan struct{}, inflight)
			var wg sync.WaitGroup
			var failed atomic.Value
			for i := 0; i < total; i++ {
				sem <- struct{}{}
				res, err := m.Append(context.Background(), "produce", int32(i%parts), x, false)
				if err != nil {
					b.Fatal(err)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := res.Durable(context.Background()); err != nil {
						failed.Store(err)
					}
					<-sem
				}()
			}
			wg.Wait()
			if err, _ := failed.Load().(error); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// slowPuts delays segment PUTs.
type slowPuts struct {
	base  http.RoundTripper
	delay time.Duration
}

func (s slowPuts) RoundTrip(r *http.Request) (*http.Response, error) {
	if s.delay > 0 && r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/segments/") {
		time.Sleep(s.delay)
	}
	return s.base.RoundTrip(r)
}

// BenchmarkReadCached: a tail consumer fetching 1 MiB at a time from chunks in the cache
// (written through at flush): the cost of assembling a fetch from stored batches.
func BenchmarkReadCached(b *testing.B) {
	e := newEnv(b)
	objects, _ := e.store(b, nil)
	m := e.manager(b, 1, objects, func(o *partition.Options) { o.CacheBytes = 256 << 20 })
	m.Apply(snapshot(1, 0, map[string]int{"tail": 1}))
	waitLeading(b, m, "tail", 0)
	batches := records1K(4<<10, 16)
	for f := 0; f < 4; f++ {
		for _, x := range batches {
			mustAppend(b, m, "tail", 0, x, false)
		}
		mustFlush(b, m)
	}
	// Offsets of 1 MiB steps through the log.
	var starts []int64
	var next int64
	for {
		res, err := m.Read(context.Background(), "tail", 0, next, 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Batches) == 0 {
			break
		}
		starts = append(starts, next)
		recordbatch.Walk(res.Batches, func(h recordbatch.Header, _, _ int) bool {
			next = h.LastOffset() + 1
			return true
		})
	}
	b.SetBytes(1 << 20)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := m.Read(context.Background(), "tail", 0, starts[i%len(starts)], 1<<20)
		if err != nil || len(res.Batches) == 0 {
			b.Fatal(len(res.Batches), err)
		}
	}
}
