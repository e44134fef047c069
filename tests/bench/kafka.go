package bench

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// System is a Kafka endpoint under test: the broker or the kfake peer.
type System struct {
	Name string
	Addr string
	// PID is the current process id (the broker's changes when it restarts).
	PID func() int
	// ProxyPID, when set, is the proxy the clients go through: its CPU is measured too.
	ProxyPID func() int
	// MetricsURL is the broker's /metrics; empty for the peer.
	MetricsURL string
	// CountObjects counts the objects the broker has written to S3; nil for the peer.
	CountObjects func(context.Context) (int, error)
	// InMemory marks the peer, which keeps every record in memory: its produce runs' topics
	// get retention.bytes and are deleted afterwards, so a run at hundreds of MB/s does not
	// fill the machine's memory.
	InMemory bool
}

// Snapshot is a system's counters at one moment; runs report the difference of two.
type Snapshot struct {
	At      time.Time
	Proc    ProcSample
	Self    ProcSample    // the harness: load generator and consumer
	Proxy   ProcSample    // the proxy, when System.ProxyPID is set
	Busy    time.Duration // the whole machine's busy CPU time
	Metrics Metrics
	Objects int
}

func (s System) snapshot(ctx context.Context) (Snapshot, error) {
	snap := Snapshot{At: time.Now()}
	var err error
	if snap.Proc, err = readProc(s.PID()); err != nil {
		return snap, fmt.Errorf("%s: read /proc: %w", s.Name, err)
	}
	if snap.Self, err = readProc(os.Getpid()); err != nil {
		return snap, err
	}
	if s.ProxyPID != nil {
		if snap.Proxy, err = readProc(s.ProxyPID()); err != nil {
			return snap, fmt.Errorf("%s: read the proxy's /proc: %w", s.Name, err)
		}
	}
	if snap.Busy, _, err = machineCPU(); err != nil {
		return snap, err
	}
	if s.MetricsURL != "" {
		if snap.Metrics, err = scrape(ctx, s.MetricsURL); err != nil {
			return snap, fmt.Errorf("%s: %w", s.Name, err)
		}
	}
	if s.CountObjects != nil {
		if snap.Objects, err = s.CountObjects(ctx); err != nil {
			return snap, fmt.Errorf("%s: count objects: %w", s.Name, err)
		}
	}
	return snap, nil
}

// Cores turns CPU time over the delta's wall time into cores in use.
func (d Delta) Cores(cpu time.Duration) float64 { return rate(cpu.Seconds(), d.Elapsed) }

// Delta is what a system did between two snapshots.
type Delta struct {
	Elapsed  time.Duration
	CPU      time.Duration // the system's process
	SelfCPU  time.Duration // the harness process (load generator, consumer)
	ProxyCPU time.Duration // the proxy process, when the clients went through one
	Busy     time.Duration // the whole machine
	PeakRSS  int64         // the process's high-water mark at the end
	Puts     float64
	PutBytes float64
	Gets     float64
	GetBytes float64
	Flushes  float64
	Objects  int
	// Uploads and Commits summarise the broker's kafscale_flush_upload_seconds and
	// kafscale_etcd_commit_seconds histograms over the delta.
	Uploads, Commits Hist
}

// add sums two deltas of separate runs (the high-water mark is the larger; histogram
// bounds are not summed).
func (d Delta) add(o Delta) Delta {
	d.Elapsed += o.Elapsed
	d.CPU += o.CPU
	d.SelfCPU += o.SelfCPU
	d.ProxyCPU += o.ProxyCPU
	d.Busy += o.Busy
	d.PeakRSS = max(d.PeakRSS, o.PeakRSS)
	d.Puts += o.Puts
	d.PutBytes += o.PutBytes
	d.Gets += o.Gets
	d.GetBytes += o.GetBytes
	d.Flushes += o.Flushes
	d.Objects += o.Objects
	return d
}

// Hist is a histogram's observations between two scrapes: how many, the upper bound of the
// bucket holding the 99th percentile, and how many took longer than Slow.
type Hist struct {
	N        float64
	P99Bound float64 // seconds; +Inf when beyond the last bucket
	Slow     float64 // observations above SlowBound
}

// SlowBound is the bucket bound Hist.Slow counts beyond: 160 ms, about twice a healthy
// segment PUT here and tens of times a healthy etcd commit.
const SlowBound = 0.16

// histDelta summarises the histogram name between scrapes a and b.
func histDelta(a, b Metrics, name string) Hist {
	type bucket struct{ le, n float64 }
	var bs []bucket
	prefix := name + `_bucket{le="`
	for k, v := range b {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		le, err := strconv.ParseFloat(strings.TrimSuffix(k[len(prefix):], `"}`), 64)
		if err != nil {
			continue
		}
		bs = append(bs, bucket{le, v - a[k]})
	}
	slices.SortFunc(bs, func(x, y bucket) int { return cmp.Compare(x.le, y.le) })
	h := Hist{N: b[name+"_count"] - a[name+"_count"]}
	h.P99Bound = math.Inf(1)
	for i := len(bs) - 1; i >= 0; i-- {
		if bs[i].n >= 0.99*h.N {
			h.P99Bound = bs[i].le
		}
		if bs[i].le == SlowBound {
			h.Slow = h.N - bs[i].n
		}
	}
	return h
}

func delta(a, b Snapshot) Delta {
	d := Delta{Elapsed: b.At.Sub(a.At), CPU: b.Proc.CPU - a.Proc.CPU, SelfCPU: b.Self.CPU - a.Self.CPU, ProxyCPU: b.Proxy.CPU - a.Proxy.CPU,
		Busy: b.Busy - a.Busy, PeakRSS: b.Proc.PeakRSS, Objects: b.Objects - a.Objects}
	if a.Metrics != nil && b.Metrics != nil {
		m := func(name string) float64 { return b.Metrics[name] - a.Metrics[name] }
		d.Puts, d.PutBytes = m("kafscale_s3_puts_total"), m("kafscale_s3_put_bytes_total")
		d.Gets, d.GetBytes = m("kafscale_s3_gets_total"), m("kafscale_s3_get_bytes_total")
		d.Flushes = m("kafscale_flushes_total")
		d.Uploads = histDelta(a.Metrics, b.Metrics, "kafscale_flush_upload_seconds")
		d.Commits = histDelta(a.Metrics, b.Metrics, "kafscale_etcd_commit_seconds")
	}
	return d
}

// Metrics are the unlabelled series of a Prometheus text page (labelled ones keep their
// labels in the name).
type Metrics map[string]float64

func scrape(ctx context.Context, url string) (Metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	m := Metrics{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m, sc.Err()
}

// maxRequestBytes caps the load generator's produce requests.
const maxRequestBytes = 4 << 20

func newClient(addr string, opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.ClientID("kafscale-bench"),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedBytes(64 << 20),
		// franz-go also stops at 10,000 buffered records by default: 10 MiB of 1 KiB records
		// against 64 MiB of 16 KiB ones. Make the bytes the one limit for every record size.
		kgo.MaxBufferedRecords(1 << 20),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		// franz-go packs every ready batch into one produce request, up to 100 MiB: 2–60 MiB
		// on 64 partitions here, each built in a pooled buffer that regrows by append's small
		// steps, which cost the load generator 0.15 of this machine's 2 cores. Requests of at
		// most 4 MiB (Java's producer sends ≤ 1 MiB, max.request.size) still keep 20 MiB in
		// flight per client.
		kgo.BrokerMaxWriteBytes(maxRequestBytes),
	}
	return kgo.NewClient(append(base, opts...)...)
}

// producerClients returns n clients producing to topic, each with its own connection, and a
// func closing them all.
func producerClients(addr, topic string, n int) ([]*kgo.Client, func(), error) {
	cls := make([]*kgo.Client, 0, n)
	closeAll := func() {
		for _, cl := range cls {
			cl.Close()
		}
	}
	for i := 0; i < n; i++ {
		cl, err := newClient(addr, kgo.DefaultProduceTopic(topic))
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		cls = append(cls, cl)
	}
	return cls, closeAll, nil
}

func createTopic(ctx context.Context, addr, topic string, partitions int, configs map[string]*string) error {
	cl, err := newClient(addr)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopic(ctx, int32(partitions), 1, configs, topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	if resp.Err != nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, resp.Err)
	}
	return nil
}

func deleteTopic(addr, topic string) {
	cl, err := newClient(addr)
	if err != nil {
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = kadm.NewClient(cl).DeleteTopics(ctx, topic)
}

// ProduceResult is one produce run as the load generator saw it, plus what the system did
// meanwhile.
type ProduceResult struct {
	System      string
	RecordBytes int
	Partitions  int
	Producers   int   // clients producing at once, each with its own connection
	Records     int64 // acknowledged in the measured window
	Bytes       int64 // record values acknowledged in the measured window
	Errors      int64
	Delta       Delta // Delta.PeakRSS: the system's peak RSS during this run
	// PriorPeakRSS is the system's peak RSS before the run (since the previous reset): the
	// run resets the peak at its start.
	PriorPeakRSS int64
}

// BytesPerSec is the acknowledged payload rate.
func (r ProduceResult) BytesPerSec() float64 { return rate(float64(r.Bytes), r.Delta.Elapsed) }

// RecordsPerSec is the acknowledged record rate.
func (r ProduceResult) RecordsPerSec() float64 { return rate(float64(r.Records), r.Delta.Elapsed) }

// produceThroughput produces as fast as the system acknowledges (acks=all, no compression,
// up to 64 MiB buffered in each client) from producers clients, each with its own
// connection, for warmup+d and measures the last d. With limit > 0 it instead produces
// exactly limit payload bytes and measures the whole run.
func produceThroughput(ctx context.Context, sys System, topic string, recordBytes, partitions, producers int, warmup, d time.Duration, limit int64, pool *Payload) (ProduceResult, error) {
	res := ProduceResult{System: sys.Name, RecordBytes: recordBytes, Partitions: partitions, Producers: producers}
	var configs map[string]*string
	if sys.InMemory && limit == 0 {
		keep := strconv.Itoa(max(64<<20/partitions, 1<<20))
		configs = map[string]*string{"retention.bytes": &keep}
		defer deleteTopic(sys.Addr, topic)
	}
	if err := createTopic(ctx, sys.Addr, topic, partitions, configs); err != nil {
		return res, err
	}
	res.PriorPeakRSS = resetPeakRSS(sys.PID())
	cls, closeAll, err := producerClients(sys.Addr, topic, producers)
	if err != nil {
		return res, err
	}
	defer closeAll()
	var (
		acked, ackedBytes, failed atomic.Int64
		firstErr                  atomic.Pointer[error]
	)
	cb := func(r *kgo.Record, err error) {
		if err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, &err)
			return
		}
		acked.Add(1)
		ackedBytes.Add(int64(len(r.Value)))
	}
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	var n int64 = -1
	if limit > 0 {
		n = (limit + int64(recordBytes) - 1) / int64(recordBytes)
	}
	var gen sync.WaitGroup
	for i, cl := range cls {
		mine := int64(-1) // records for this producer: an equal share of n
		if n >= 0 {
			mine = n / int64(producers)
			if int64(i) < n%int64(producers) {
				mine++
			}
		}
		gen.Add(1)
		go func() {
			defer gen.Done()
			for j := int64(0); (mine < 0 || j < mine) && pctx.Err() == nil; j++ {
				cl.Produce(pctx, &kgo.Record{Value: pool.Slice(recordBytes)}, cb)
			}
		}()
	}
	genDone := make(chan struct{})
	go func() {
		gen.Wait()
		close(genDone)
	}()
	flushAll := func(ctx context.Context) error {
		var errs []error
		for _, cl := range cls {
			errs = append(errs, cl.Flush(ctx))
		}
		return errors.Join(errs...)
	}
	fail := func() error {
		if p := firstErr.Load(); p != nil {
			return fmt.Errorf("%s: produce to %s: %w", sys.Name, topic, *p)
		}
		return nil
	}
	if limit > 0 {
		s0, err := sys.snapshot(ctx)
		if err != nil {
			return res, err
		}
		<-genDone
		if err := flushAll(ctx); err != nil {
			return res, err
		}
		s1, err := sys.snapshot(ctx)
		if err != nil {
			return res, err
		}
		res.Records, res.Bytes, res.Errors, res.Delta = acked.Load(), ackedBytes.Load(), failed.Load(), delta(s0, s1)
		if res.Errors > 0 {
			return res, fail()
		}
		return res, nil
	}
	// The warm-up starts once the topic takes records (leaders claimed, clients connected).
	for acked.Load() == 0 && firstErr.Load() == nil && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if err := fail(); err != nil {
		return res, err
	}
	sleep(ctx, warmup)
	s0, err := sys.snapshot(ctx)
	if err != nil {
		return res, err
	}
	r0, b0, e0 := acked.Load(), ackedBytes.Load(), failed.Load()
	sleep(ctx, d)
	// A window shorter than one acknowledgement cycle (the smoke test's) is stretched until
	// something is acknowledged, so the rate is never a zero that only reflects the window.
	for stretch := time.Now().Add(time.Minute); acked.Load() == r0 && firstErr.Load() == nil && time.Now().Before(stretch) && ctx.Err() == nil; {
		time.Sleep(20 * time.Millisecond)
	}
	s1, err := sys.snapshot(ctx)
	if err != nil {
		return res, err
	}
	res.Records, res.Bytes, res.Errors = acked.Load()-r0, ackedBytes.Load()-b0, failed.Load()-e0
	res.Delta = delta(s0, s1)
	windowErr := fail() // what failed up to here; cancelling below fails what waits to be buffered
	// Let what is buffered finish, so the next run starts on an idle system.
	stop()
	<-genDone
	fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	_ = flushAll(fctx)
	if res.Errors > 0 && windowErr != nil {
		return res, windowErr
	}
	if res.Records == 0 {
		return res, fmt.Errorf("%s: no record acknowledged in %s", sys.Name, d)
	}
	return res, nil
}

// LatencyResult is a fixed-rate run: end-to-end latency from each record's intended send
// time (in its header) to the moment a consumer received it.
type LatencyResult struct {
	System      string
	RecordBytes int
	TargetRate  float64 // records/s
	Producers   int     // clients sharing the sends (record i goes through client i mod Producers)
	Sent        int
	Received    int
	Latency     Percentiles
	Delta       Delta
}

const tsHeader = "bench-intended-ns"

// fixedRate sends records at recPerSec for d, open loop: record i is due at start+i/rate
// and carries that time; a producer that falls behind sends what is due at once, and the
// delay counts against its latency (no coordinated omission). A consumer reading the topic
// from the start measures receipt time − intended time for every record.
func fixedRate(ctx context.Context, sys System, topic string, recordBytes, producers int, recPerSec float64, d time.Duration, pool *Payload) (LatencyResult, error) {
	res := LatencyResult{System: sys.Name, RecordBytes: recordBytes, TargetRate: recPerSec, Producers: producers}
	if sys.InMemory {
		defer deleteTopic(sys.Addr, topic)
	}
	if err := createTopic(ctx, sys.Addr, topic, 1, nil); err != nil {
		return res, err
	}
	prods, closeAll, err := producerClients(sys.Addr, topic, producers)
	if err != nil {
		return res, err
	}
	defer closeAll()
	cons, err := newClient(sys.Addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return res, err
	}
	defer cons.Close()

	n := int(d.Seconds() * recPerSec)
	samples := make([]time.Duration, 0, n)
	var (
		mu       sync.Mutex
		received int
		seen     = make(map[int64]bool, n)
	)
	sentinel := make(chan struct{})
	consDone := make(chan error, 1)
	cctx, stopCons := context.WithCancel(ctx)
	defer stopCons()
	go func() {
		gotSentinel := false
		for {
			fs := cons.PollFetches(cctx)
			now := time.Now()
			if cctx.Err() != nil {
				consDone <- nil
				return
			}
			if errs := fs.Errors(); len(errs) > 0 {
				consDone <- fmt.Errorf("%s: consume %s: %w", sys.Name, topic, errs[0].Err)
				return
			}
			mu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				for _, h := range r.Headers {
					if h.Key == tsHeader && len(h.Value) == 8 {
						ns := int64(binary.BigEndian.Uint64(h.Value))
						if !seen[ns] {
							seen[ns] = true
							received++
							samples = append(samples, now.Sub(time.Unix(0, ns)))
						}
						return
					}
				}
				if !gotSentinel {
					gotSentinel = true
					close(sentinel)
				}
			})
			done := received >= n
			mu.Unlock()
			if done {
				consDone <- nil
				return
			}
		}
	}()
	// The consumer is connected and at the end of the topic once it sees a first record.
	// Every client sends one, at once, before the measurement: an idempotent franz-go client
	// keeps one request in flight until its first answer, so a client still in that state
	// would queue the first records of the measured window behind it.
	sent := make(chan error, len(prods))
	for _, p := range prods {
		go func() { sent <- p.ProduceSync(ctx, &kgo.Record{Value: []byte("sentinel")}).FirstErr() }()
	}
	for range prods {
		if err := <-sent; err != nil {
			return res, fmt.Errorf("%s: produce to %s: %w", sys.Name, topic, err)
		}
	}
	select {
	case <-sentinel:
	case err := <-consDone:
		return res, err
	case <-time.After(30 * time.Second):
		return res, fmt.Errorf("%s: consumer of %s saw nothing within 30s", sys.Name, topic)
	}

	s0, err := sys.snapshot(ctx)
	if err != nil {
		return res, err
	}
	var failed atomic.Int64
	var firstErr atomic.Pointer[error]
	cb := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, &err)
		}
	}
	start := time.Now().Add(10 * time.Millisecond)
	due := func(i int) time.Time { return start.Add(time.Duration(float64(i) * float64(time.Second) / recPerSec)) }
	for i := 0; i < n && ctx.Err() == nil; {
		now := time.Now()
		for ; i < n && !due(i).After(now); i++ {
			var ts [8]byte
			binary.BigEndian.PutUint64(ts[:], uint64(due(i).UnixNano()))
			prods[i%producers].Produce(ctx, &kgo.Record{Value: pool.Slice(recordBytes), Headers: []kgo.RecordHeader{{Key: tsHeader, Value: ts[:]}}}, cb)
		}
		if i < n {
			time.Sleep(time.Until(due(i)))
		}
	}
	res.Sent = n
	select {
	case err := <-consDone:
		if err != nil {
			return res, err
		}
	case <-time.After(d + 30*time.Second):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	stopCons()
	s1, err := sys.snapshot(ctx)
	if err != nil {
		return res, err
	}
	res.Delta = delta(s0, s1)
	mu.Lock()
	res.Received = received
	res.Latency = percentilesOf(samples)
	mu.Unlock()
	if p := firstErr.Load(); p != nil {
		return res, fmt.Errorf("%s: %d produces to %s failed: %w", sys.Name, failed.Load(), topic, *p)
	}
	return res, nil
}

// CatchUpResult is reading a whole backlog from its first offset.
type CatchUpResult struct {
	System  string
	Records int64
	Bytes   int64 // record values read
	Delta   Delta
}

// BytesPerSec is the payload read rate.
func (r CatchUpResult) BytesPerSec() float64 { return rate(float64(r.Bytes), r.Delta.Elapsed) }

// catchUp reads topic from the start until it has seen records records, with franz-go's
// default fetch sizes.
func catchUp(ctx context.Context, sys System, topic string, records int64) (CatchUpResult, error) {
	res := CatchUpResult{System: sys.Name}
	s0, err := sys.snapshot(ctx)
	if err != nil {
		return res, err
	}
	cons, err := newClient(sys.Addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return res, err
	}
	defer cons.Close()
	for res.Records < records {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if errs := fs.Errors(); len(errs) > 0 {
			return res, fmt.Errorf("%s: consume %s: %w", sys.Name, topic, errs[0].Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			res.Records++
			res.Bytes += int64(len(r.Value))
		})
	}
	s1, err := sys.snapshot(ctx)
	if err != nil {
		return res, err
	}
	res.Delta = delta(s0, s1)
	return res, nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// SequentialResult is one producer that sends a request only once the previous one is
// acknowledged: what an application calling a synchronous send in a loop gets.
type SequentialResult struct {
	System      string
	RecordBytes int
	Requests    int
	Latency     Percentiles // per request, send to acknowledgement
	Delta       Delta
}

// RequestsPerSec is the acknowledged requests (of one record each) per second.
func (r SequentialResult) RequestsPerSec() float64 { return rate(float64(r.Requests), r.Delta.Elapsed) }

// sequentialProduce sends one record of recordBytes at a time to a one-partition topic for
// d, each waiting for the acknowledgement (acks=all) of the one before.
func sequentialProduce(ctx context.Context, sys System, topic string, recordBytes int, d time.Duration, pool *Payload) (SequentialResult, error) {
	res := SequentialResult{System: sys.Name, RecordBytes: recordBytes}
	if sys.InMemory {
		defer deleteTopic(sys.Addr, topic)
	}
	if err := createTopic(ctx, sys.Addr, topic, 1, nil); err != nil {
		return res, err
	}
	cl, err := newClient(sys.Addr, kgo.DefaultProduceTopic(topic))
	if err != nil {
		return res, err
	}
	defer cl.Close()
	// The first request also fetches metadata and a producer id: not part of the loop.
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("first")}).FirstErr(); err != nil {
		return res, fmt.Errorf("%s: produce to %s: %w", sys.Name, topic, err)
	}
	s0, err := sys.snapshot(ctx)
	if err != nil {
		return res, err
	}
	var samples []time.Duration
	for end := time.Now().Add(d); time.Now().Before(end); {
		start := time.Now()
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: pool.Slice(recordBytes)}).FirstErr(); err != nil {
			return res, fmt.Errorf("%s: produce to %s: %w", sys.Name, topic, err)
		}
		samples = append(samples, time.Since(start))
	}
	s1, err := sys.snapshot(ctx)
	if err != nil {
		return res, err
	}
	res.Delta = delta(s0, s1)
	res.Requests = len(samples)
	res.Latency = percentilesOf(samples)
	return res, nil
}
