package storage_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kafscale/kafscale/broker/app"
	"github.com/kafscale/kafscale/broker/config"
	"github.com/kafscale/kafscale/broker/logapi"
	"github.com/kafscale/kafscale/broker/partition"
	"github.com/kafscale/kafscale/broker/storage"
	"github.com/kafscale/kafscale/tests/testenv"
)

// putGate holds every segment PUT until the test decides its fate, so a test can have
// several flushes in flight and finish their uploads in any order.
type putGate struct {
	base    http.RoundTripper
	arrived chan *gatedPut

	mu     sync.Mutex
	failed map[string]bool // paths failed once: the SDK's retries fail at once too
}

type gatedPut struct {
	path   string
	decide chan bool     // true: fail the PUT
	done   chan struct{} // closed when the PUT's answer is on its way back
}

func (g *putGate) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPut || !strings.Contains(r.URL.Path, "/segments/") {
		return g.base.RoundTrip(r)
	}
	g.mu.Lock()
	again := g.failed[r.URL.Path]
	g.mu.Unlock()
	if again {
		return nil, errors.New("injected PUT failure (retry)")
	}
	gp := &gatedPut{path: r.URL.Path, decide: make(chan bool), done: make(chan struct{})}
	defer close(gp.done)
	var fail bool
	select {
	case g.arrived <- gp:
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
	select {
	case fail = <-gp.decide:
	case <-r.Context().Done(): // the test ended or gave up: the flush fails
		return nil, r.Context().Err()
	}
	if fail {
		g.mu.Lock()
		g.failed[r.URL.Path] = true
		g.mu.Unlock()
		return nil, errors.New("injected PUT failure")
	}
	return g.base.RoundTrip(r)
}

// pipelineEnv is a manager whose every append starts a flush (SegmentBytes is smaller than
// any batch, while a few batches fit the buffers) and whose segment PUTs wait at a gate.
func pipelineEnv(t *testing.T, topic string, parts, parallelism int) (*env, *partition.Manager, *putGate) {
	return pipelineEnvSegment(t, topic, parts, parallelism, 50)
}

// pipelineEnvSegment is pipelineEnv with SegmentBytes of segment.
func pipelineEnvSegment(t *testing.T, topic string, parts, parallelism, segment int) (*env, *partition.Manager, *putGate) {
	e := newEnv(t)
	gate := &putGate{base: http.DefaultTransport, arrived: make(chan *gatedPut, 16), failed: map[string]bool{}}
	objects, _ := e.store(t, func(o *storage.Options) { o.HTTPClient = &http.Client{Transport: gate} })
	m := e.manager(t, 1, objects, func(o *partition.Options) { o.SegmentBytes = segment; o.FlushParallelism = parallelism })
	m.Apply(snapshot(1, 0, map[string]int{topic: parts}))
	for p := 0; p < parts; p++ {
		waitLeading(t, m, topic, int32(p))
	}
	return e, m, gate
}

func nextPut(t *testing.T, g *putGate) *gatedPut {
	t.Helper()
	select {
	case gp := <-g.arrived:
		return gp
	case <-time.After(30 * time.Second):
		t.Fatal("no segment PUT arrived: the flush did not start")
		return nil
	}
}

// restart closes m and returns a fresh manager of the same node (cold cache) leading the
// topic's partitions from what etcd and S3 hold.
func restart(t *testing.T, e *env, m *partition.Manager, topic string, parts int) *partition.Manager {
	t.Helper()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	objects, _ := e.store(t, nil)
	m2 := e.manager(t, 1, objects, nil)
	m2.Apply(snapshot(1, 0, map[string]int{topic: parts}))
	for p := 0; p < parts; p++ {
		waitLeading(t, m2, topic, int32(p))
	}
	return m2
}

// finished reports whether a Durable wait has an outcome already.
func finished(f func(context.Context) error) (bool, error) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := f(ctx)
	if isKerr(err, kerr.RequestTimedOut) {
		return false, nil
	}
	return true, err
}

// durableAndRead waits for each append of partition 0 of topic to be durable, then reads the
// partition back: dense offsets from 0 and the values want (as fmt prints the list).
func durableAndRead(t *testing.T, m *partition.Manager, topic string, durable []func(context.Context) error, want string) {
	t.Helper()
	for i, d := range durable {
		if err := d(testenv.Context(t, 30*time.Second)); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	offsets, values := readAll(t, m, topic, 0)
	assertDense(t, offsets)
	if fmt.Sprint(values) != want {
		t.Fatalf("read %q, want %s", values, want)
	}
}

// Several flushes in flight upload in parallel but commit in the order they were cut: a
// later upload finishing first waits, and nothing of it is acknowledged or readable before
// the earlier flushes commit.
func TestPipelinedFlushesCommitInOrder(t *testing.T) {
	_, m, gate := pipelineEnv(t, "pipe", 1, 4)
	var durable []func(context.Context) error
	var puts []*gatedPut
	for i := 0; i < 3; i++ {
		res := mustAppend(t, m, "pipe", 0, batch(fmt.Sprintf("v%d", i)), false)
		if res.BaseOffset != int64(i) {
			t.Fatalf("append %d got offset %d", i, res.BaseOffset)
		}
		durable = append(durable, res.Durable)
		puts = append(puts, nextPut(t, gate)) // its flush was cut: the next append is the next flush's
	}
	// The last upload finishes first: its commit must wait for the two before it.
	puts[2].decide <- false
	<-puts[2].done
	if _, hw, err := m.Offsets(testenv.Context(t, 10*time.Second), "pipe", 0); err != nil || hw != 0 {
		t.Fatalf("high watermark %d (%v) while the first flushes are uploading, want 0", hw, err)
	}
	if ok, _ := finished(durable[2]); ok {
		t.Fatal("the third flush was acknowledged before the first two committed")
	}
	puts[1].decide <- false
	puts[0].decide <- false
	durableAndRead(t, m, "pipe", durable, "[v0 v1 v2]")
	if st := m.Stats(); st.Flushes != 3 {
		t.Fatalf("%d flushes, want 3", st.Flushes)
	}
}

// Flushes whose uploads ended while an earlier one was still on its way commit with it, in
// one etcd transaction: a partition in several of them writes only its last state, which
// holds the others' chunks. Everything is acknowledged, readable in order, and survives a
// restart; the other partition in the batch commits in the same transaction.
func TestFlushesUploadedBehindOneCommitTogether(t *testing.T) {
	e, m, gate := pipelineEnv(t, "pmerge", 2, 4)
	before := m.Stats()
	var durable []func(context.Context) error
	var puts []*gatedPut
	for i, p := range []int32{0, 0, 1, 0} {
		res := mustAppend(t, m, "pmerge", p, batch(fmt.Sprintf("v%d", i)), false)
		durable = append(durable, res.Durable)
		puts = append(puts, nextPut(t, gate))
	}
	// The later uploads end first and wait for the first; give their answers time to
	// reach the committer before the first upload ends.
	for _, gp := range puts[1:] {
		gp.decide <- false
		<-gp.done
	}
	time.Sleep(300 * time.Millisecond)
	puts[0].decide <- false
	for i, d := range durable {
		if err := d(testenv.Context(t, 30*time.Second)); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	st := m.Stats()
	if txns, commits := st.Txns-before.Txns, st.Commits-before.Commits; txns != 1 || commits != 4 {
		t.Fatalf("%d transactions committed %d cuts, want 1 transaction for the 4 cuts", txns, commits)
	}
	m2 := restart(t, e, m, "pmerge", 2)
	offsets, values := readAll(t, m2, "pmerge", 0)
	assertDense(t, offsets)
	if fmt.Sprint(values) != "[v0 v1 v3]" {
		t.Fatalf("after restart partition 0 reads %q, want [v0 v1 v3]", values)
	}
	if _, values := readAll(t, m2, "pmerge", 1); fmt.Sprint(values) != "[v2]" {
		t.Fatalf("after restart partition 1 reads %q, want [v2]", values)
	}
}

// commitGate holds etcd transactions at Commit while armed, so a test can keep a flush's
// commit waiting (as one waits for an etcd fsync behind a busy disk).
type commitGate struct {
	clientv3.KV
	mu   sync.Mutex
	hold chan struct{} // non-nil: commits wait until it is closed
	held chan struct{} // a send per commit that started waiting
}

func (g *commitGate) arm() {
	g.mu.Lock()
	g.hold = make(chan struct{})
	g.mu.Unlock()
}

func (g *commitGate) release() {
	g.mu.Lock()
	close(g.hold)
	g.hold = nil
	g.mu.Unlock()
}

func (g *commitGate) Txn(ctx context.Context) clientv3.Txn {
	return &gatedTxn{Txn: g.KV.Txn(ctx), g: g}
}

type gatedTxn struct {
	clientv3.Txn
	g *commitGate
}

func (t *gatedTxn) If(cs ...clientv3.Cmp) clientv3.Txn   { t.Txn = t.Txn.If(cs...); return t }
func (t *gatedTxn) Then(ops ...clientv3.Op) clientv3.Txn { t.Txn = t.Txn.Then(ops...); return t }
func (t *gatedTxn) Else(ops ...clientv3.Op) clientv3.Txn { t.Txn = t.Txn.Else(ops...); return t }

func (t *gatedTxn) Commit() (*clientv3.TxnResponse, error) {
	t.g.mu.Lock()
	hold := t.g.hold
	t.g.mu.Unlock()
	if hold != nil {
		t.g.held <- struct{}{}
		<-hold
	}
	return t.Txn.Commit()
}

// An uploaded flush gives its upload slot back before its commit: while a commit waits, the
// next flush uploads (with one upload at a time). Flushes in flight, uploading or waiting
// for their commit, stay within twice the parallelism; commits stay in order, and nothing
// is acknowledged before its commit.
func TestUploadsContinueWhileACommitWaits(t *testing.T) {
	e := newEnv(t)
	gate := &putGate{base: http.DefaultTransport, arrived: make(chan *gatedPut, 16), failed: map[string]bool{}}
	objects, _ := e.store(t, func(o *storage.Options) { o.HTTPClient = &http.Client{Transport: gate} })
	cli := e.etcd.Client()
	commits := &commitGate{KV: cli.KV, held: make(chan struct{}, 16)}
	cli.KV = commits
	opts := app.PartitionOptions(config.Defaults())
	opts.NodeID, opts.FlushInterval, opts.CommitTimeout, opts.SegmentBytes, opts.FlushParallelism = 1, time.Hour, 30*time.Second, 50, 1
	m, err := partition.NewManager(context.Background(), opts, cli, e.keys, objects)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	m.Apply(snapshot(1, 0, map[string]int{"wait": 1}))
	waitLeading(t, m, "wait", 0)

	commits.arm()
	released := false
	defer func() {
		if !released {
			commits.release()
		}
	}()
	a := mustAppend(t, m, "wait", 0, batch("v0"), false)
	nextPut(t, gate).decide <- false
	select {
	case <-commits.held: // v0 is uploaded; its commit waits
	case <-time.After(30 * time.Second):
		t.Fatal("the first flush did not reach its commit")
	}
	b := mustAppend(t, m, "wait", 0, batch("v1"), false)
	second := nextPut(t, gate) // before the change, no upload started until v0 committed
	if ok, _ := finished(a.Durable); ok {
		t.Fatal("v0 acknowledged while its commit waits")
	}
	second.decide <- false
	<-second.done
	// Two flushes in flight (v0 committing, v1 uploaded): the window of 2 × 1 is full, so
	// v2's flush waits for a slot and no third upload starts.
	c := mustAppend(t, m, "wait", 0, batch("v2"), false)
	select {
	case gp := <-gate.arrived:
		t.Fatalf("a third upload (%s) started with two flushes in flight and parallelism 1", gp.path)
	case <-time.After(300 * time.Millisecond):
	}
	if st := m.Stats(); st.FlushesInFlight != 2 {
		t.Fatalf("%d flushes in flight, want 2", st.FlushesInFlight)
	}
	if ok, _ := finished(b.Durable); ok {
		t.Fatal("v1 acknowledged before v0 committed")
	}
	commits.release()
	released = true
	nextPut(t, gate).decide <- false // v2, once v0 and v1 committed
	durableAndRead(t, m, "wait", []func(context.Context) error{a.Durable, b.Durable, c.Durable}, "[v0 v1 v2]")
}

// A failed upload in the middle of the pipeline fails its appends and every later flush of
// the same partition that is already in flight (their offsets follow the failed data),
// even when those later uploads succeed. Other partitions of those later flushes commit.
// Nothing acknowledged is lost and the next append takes the first free offset.
func TestPipelineFailureFailsLaterFlushesOfThePartition(t *testing.T) {
	// Two flushes in flight fill the pipeline, so the next flush takes a2 and b0 together:
	// a0 and a1 are a segment each, a2 and b0 (about 70 bytes each) only together.
	e, m, gate := pipelineEnvSegment(t, "pfail", 2, 2, 100)
	v0 := "a0" + strings.Repeat(".", 40)
	a0 := mustAppend(t, m, "pfail", 0, batch(v0), false)
	put0 := nextPut(t, gate)
	a1 := mustAppend(t, m, "pfail", 0, batch("a1"+strings.Repeat(".", 40)), false)
	put1 := nextPut(t, gate)
	a2 := mustAppend(t, m, "pfail", 0, batch("a2"), false)
	b0 := mustAppend(t, m, "pfail", 1, batch("b0"), false)
	put0.decide <- false // flush 0 commits and frees a slot: flush 2 starts
	put2 := nextPut(t, gate)
	if buffered := m.Stats().BufferedBytes; buffered != 0 {
		t.Fatalf("%d bytes still buffered: a2 and b0 should be in flush 2", buffered)
	}
	// The later upload succeeds first; then the middle one fails.
	put2.decide <- false
	<-put2.done
	put1.decide <- true

	if err := a0.Durable(testenv.Context(t, 30*time.Second)); err != nil {
		t.Fatalf("a0, flushed before the failure: %v", err)
	}
	if err := a1.Durable(testenv.Context(t, 30*time.Second)); !isKerr(err, kerr.KafkaStorageError) {
		t.Fatalf("a1, whose upload failed: %v, want KAFKA_STORAGE_ERROR", err)
	}
	if err := a2.Durable(testenv.Context(t, 30*time.Second)); !isKerr(err, kerr.KafkaStorageError) {
		t.Fatalf("a2, uploaded after a failed flush of its partition: %v, want KAFKA_STORAGE_ERROR", err)
	}
	if err := b0.Durable(testenv.Context(t, 30*time.Second)); err != nil {
		t.Fatalf("b0, another partition: %v", err)
	}
	_, values := readAll(t, m, "pfail", 0)
	if fmt.Sprint(values) != "["+v0+"]" {
		t.Fatalf("partition 0 reads %q, want only the acknowledged a0", values)
	}

	// The next append takes offset 1: no gap where the failed data was.
	v3 := "a3" + strings.Repeat(".", 40)
	a3 := mustAppend(t, m, "pfail", 0, batch(v3), false)
	if a3.BaseOffset != 1 {
		t.Fatalf("append after the failure got offset %d, want 1", a3.BaseOffset)
	}
	nextPut(t, gate).decide <- false
	if err := a3.Durable(testenv.Context(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}

	// A restarted broker (fresh manager, cold cache) reads the same.
	m2 := restart(t, e, m, "pfail", 2)
	offsets, values := readAll(t, m2, "pfail", 0)
	assertDense(t, offsets)
	if fmt.Sprint(values) != "["+v0+" "+v3+"]" {
		t.Fatalf("after restart partition 0 reads %q", values)
	}
	if _, values := readAll(t, m2, "pfail", 1); fmt.Sprint(values) != "[b0]" {
		t.Fatalf("after restart partition 1 reads %q", values)
	}
}

// A leader deposed while two of its flushes are in flight: the first is fenced at its
// commit and the second, whose offsets follow it, fails too without writing anything; the
// new leader continues from the last acknowledged offset.
func TestPipelinedFlushesOfADeposedLeaderAreFenced(t *testing.T) {
	e, m, gate := pipelineEnv(t, "pfence", 1, 4)
	a0 := mustAppend(t, m, "pfence", 0, batch("a0"), false)
	nextPut(t, gate).decide <- false
	if err := a0.Durable(testenv.Context(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	a1 := mustAppend(t, m, "pfence", 0, batch("a1"), false)
	put1 := nextPut(t, gate)
	a2 := mustAppend(t, m, "pfence", 0, batch("a2"), false)
	put2 := nextPut(t, gate)

	// Another broker takes the partition over at the next epoch.
	objects2, _ := e.store(t, nil)
	m2 := e.manager(t, 2, objects2, nil)
	m2.Apply(snapshot(2, 1, map[string]int{"pfence": 1}))
	waitLeading(t, m2, "pfence", 0)
	before, err := e.cli.Get(testenv.Context(t, 10*time.Second), e.keys.Partition("pfence", 0))
	if err != nil {
		t.Fatal(err)
	}

	put2.decide <- false
	put1.decide <- false
	if err := a1.Durable(testenv.Context(t, 30*time.Second)); !isKerr(err, kerr.NotLeaderForPartition) {
		t.Fatalf("a1 of the deposed leader: %v, want NOT_LEADER_FOR_PARTITION", err)
	}
	if err := a2.Durable(testenv.Context(t, 30*time.Second)); err == nil {
		t.Fatal("a2, following a fenced flush, was acknowledged")
	}
	after, err := e.cli.Get(testenv.Context(t, 10*time.Second), e.keys.Partition("pfence", 0))
	if err != nil {
		t.Fatal(err)
	}
	if after.Kvs[0].ModRevision != before.Kvs[0].ModRevision {
		t.Fatal("the deposed leader's flushes changed the partition state")
	}
	b := mustAppend(t, m2, "pfence", 0, batch("b"), false)
	mustFlush(t, m2)
	if err := b.Durable(testenv.Context(t, 30*time.Second)); err != nil || b.BaseOffset != 1 {
		t.Fatalf("new leader's append: offset %d, %v; want 1", b.BaseOffset, err)
	}
	offsets, values := readAll(t, m2, "pfence", 0)
	assertDense(t, offsets)
	if fmt.Sprint(values) != "[a0 b]" {
		t.Fatalf("read %q, want [a0 b]", values)
	}
}

// A flush takes the partitions that have buffered the longest, only until it holds a
// segment: when the buffers ran ahead of S3 (here six partitions buffered while the one
// upload slot was busy), they go out as segment-sized objects in the order they were
// buffered, not as one large object. PUTs per byte then do not depend on how many
// partitions the bytes came from.
func TestFlushTakesOldestBuffersUpToASegment(t *testing.T) {
	const parts = 8
	_, m, gate := pipelineEnvSegment(t, "oldest", parts, 1, 200)
	pad := strings.Repeat(".", 40) // each batch about 110 bytes: two make a segment
	res := make([]logapi.AppendResult, parts)
	res[0] = mustAppend(t, m, "oldest", 0, batch("p0"+pad), false)
	res[1] = mustAppend(t, m, "oldest", 1, batch("p1"+pad), false)
	first := nextPut(t, gate) // p0 and p1 made a segment
	for p := 2; p < parts; p++ {
		res[p] = mustAppend(t, m, "oldest", int32(p), batch(fmt.Sprintf("p%d", p)+pad), false)
	}
	if buffered := m.Stats().BufferedBytes; buffered < 600 {
		t.Fatalf("%d bytes buffered while the upload slot is busy, want the six later batches", buffered)
	}
	puts := []*gatedPut{first}
	for i := 0; i < parts/2; i++ {
		puts[i].decide <- false
		// The flush just released holds partitions 2i and 2i+1 and commits them, and
		// only them: the later partitions are still waiting for their own flushes.
		for p := 2 * i; p < 2*i+2; p++ {
			if err := res[p].Durable(testenv.Context(t, 30*time.Second)); err != nil {
				t.Fatalf("partition %d: %v", p, err)
			}
		}
		for p := 2*i + 2; p < parts; p++ {
			if ok, _ := finished(res[p].Durable); ok {
				t.Fatalf("partition %d acknowledged with the flush of partitions %d and %d", p, 2*i, 2*i+1)
			}
		}
		if i+1 < parts/2 {
			puts = append(puts, nextPut(t, gate))
		}
	}
	if st := m.Stats(); st.Flushes != parts/2 || st.BufferedBytes != 0 {
		t.Fatalf("%d flushes, %d bytes left, want %d segment-sized flushes and nothing left", st.Flushes, st.BufferedBytes, parts/2)
	}
	for p := 0; p < parts; p++ {
		if _, values := readAll(t, m, "oldest", int32(p)); fmt.Sprint(values) != fmt.Sprintf("[p%d%s]", p, pad) {
			t.Fatalf("partition %d reads %q", p, values)
		}
	}
	if st := m.Stats(); st.Cache.Reserved != 0 || st.Cache.Bytes == 0 {
		t.Fatalf("cache: %d bytes reserved, %d cached; want 0 reserved, the flushed data cached", st.Cache.Reserved, st.Cache.Bytes)
	}
}

// A flush that holds three quarters of a segment leaves out a buffer that would take it past
// a segment and an eighth (it goes first in the next flush) and takes a smaller one after
// it instead, so objects stay near a segment whatever the partitions' buffer sizes.
func TestFlushStopsShortOfOvershootingASegment(t *testing.T) {
	const segment = 400
	_, m, gate := pipelineEnvSegment(t, "short", 5, 1, segment)
	value := func(name string, size int) []byte {
		b := batch(name)
		return batch(name + strings.Repeat(".", size-len(b)))
	}
	sizes := []int{210, 210, 310, 200, 110} // p0+p1 fill the first flush; then p2, p3, p4
	res := make([]logapi.AppendResult, len(sizes))
	for p, size := range sizes[:2] {
		res[p] = mustAppend(t, m, "short", int32(p), value(fmt.Sprintf("p%d", p), size), false)
	}
	first := nextPut(t, gate) // the one upload slot is busy: p2, p3, p4 wait in that order
	var got []int
	for p := 2; p < len(sizes); p++ {
		b := value(fmt.Sprintf("p%d", p), sizes[p])
		got = append(got, len(b))
		res[p] = mustAppend(t, m, "short", int32(p), b, false)
	}
	if s2, s3, s4 := got[0], got[1], got[2]; s2 < segment*3/4 || s2+s3 <= segment*9/8 || s2+s4 > segment*9/8 {
		t.Fatalf("batches of %v bytes do not make the case", got)
	}
	first.decide <- false
	second := nextPut(t, gate)
	second.decide <- false
	for _, p := range []int{0, 1, 2, 4} { // 310 + 200 > 450: p3 waits; 310 + 110 fits
		if err := res[p].Durable(testenv.Context(t, 30*time.Second)); err != nil {
			t.Fatalf("partition %d: %v", p, err)
		}
	}
	if ok, _ := finished(res[3].Durable); ok {
		t.Fatal("partition 3 went into the second flush, taking it past a segment and an eighth")
	}
	nextPut(t, gate).decide <- false
	if err := res[3].Durable(testenv.Context(t, 30*time.Second)); err != nil {
		t.Fatalf("partition 3 in the third flush: %v", err)
	}
	if st := m.Stats(); st.Flushes != 3 {
		t.Fatalf("%d flushes, want 3", st.Flushes)
	}
}

// One partition running ahead of S3 is sealed into segment-sized buffers as it goes, each
// flushed on its own, in order, rather than all of it in one large object once the upload
// slot frees. A failed upload fails the sealed buffers behind it too (their offsets follow
// its data), and the offsets rewind to the committed high watermark.
func TestPartitionAheadOfS3IsSealedBySegment(t *testing.T) {
	_, m, gate := pipelineEnvSegment(t, "sealed", 1, 1, 200)
	pad := strings.Repeat(".", 40) // about 110 bytes per batch: two make a segment
	var res []logapi.AppendResult
	for i := 0; i < 2; i++ {
		res = append(res, mustAppend(t, m, "sealed", 0, batch(fmt.Sprintf("v%d", i)+pad), false))
	}
	first := nextPut(t, gate) // v0 v1: a segment, uploading; the one slot is busy
	for i := 2; i < 8; i++ {
		res = append(res, mustAppend(t, m, "sealed", 0, batch(fmt.Sprintf("v%d", i)+pad), false))
	}
	first.decide <- false
	for i := 0; i < 2; i++ {
		if err := res[i].Durable(testenv.Context(t, 30*time.Second)); err != nil {
			t.Fatalf("v%d: %v", i, err)
		}
	}
	// v2 v3 go out alone, not v2..v7 together.
	second := nextPut(t, gate)
	second.decide <- false
	for i := 2; i < 4; i++ {
		if err := res[i].Durable(testenv.Context(t, 30*time.Second)); err != nil {
			t.Fatalf("v%d: %v", i, err)
		}
	}
	for i := 4; i < 8; i++ {
		if ok, _ := finished(res[i].Durable); ok {
			t.Fatalf("v%d acknowledged with the flush of v2 and v3", i)
		}
	}
	// The next upload (v4 v5) fails: v6 v7, sealed behind it, fail with it.
	nextPut(t, gate).decide <- true
	for i := 4; i < 8; i++ {
		if err := res[i].Durable(testenv.Context(t, 30*time.Second)); !isKerr(err, kerr.KafkaStorageError) {
			t.Fatalf("v%d after the failed upload: %v, want KAFKA_STORAGE_ERROR", i, err)
		}
	}
	if st := m.Stats(); st.Flushes != 2 || st.BufferedBytes != 0 {
		t.Fatalf("%d flushes committed, %d bytes buffered; want 2 and 0", st.Flushes, st.BufferedBytes)
	}
	again := mustAppend(t, m, "sealed", 0, batch("again"+pad+pad+pad+pad), false)
	if again.BaseOffset != 4 {
		t.Fatalf("append after the failure got offset %d, want 4", again.BaseOffset)
	}
	nextPut(t, gate).decide <- false
	if err := again.Durable(testenv.Context(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	offsets, values := readAll(t, m, "sealed", 0)
	assertDense(t, offsets)
	if len(values) != 5 || values[4] != "again"+pad+pad+pad+pad {
		t.Fatalf("read %q", values)
	}
	// Every buffer's room in the cache was given back: cached, or dropped with the failure.
	if r := m.Stats().Cache.Reserved; r != 0 {
		t.Fatalf("%d bytes still reserved in the cache with nothing buffered or in flight", r)
	}
}

// TestQuietProducersAreFlushedBeforeTheInterval: producers whose requests in flight all
// wait for acks stop sending; once an eighth of a segment is buffered and no flush is in
// flight, the broker flushes it as soon as they are quiet instead of at the flush interval
// (an hour here). Less than that waits for the interval, so a slow stream still makes one
// object per interval; and while a flush is in flight the next one waits for it to end.
func TestQuietProducersAreFlushedBeforeTheInterval(t *testing.T) {
	b := batch("quiet-" + strings.Repeat(".", 40))
	seg := 12 * len(b) // an eighth of it: 1.5 batches
	_, m, gate := pipelineEnvSegment(t, "quiet", 1, 1, seg)

	first := mustAppend(t, m, "quiet", 0, b, false)
	time.Sleep(200 * time.Millisecond) // 40 × the quiet period
	select {
	case gp := <-gate.arrived:
		t.Fatalf("%s: PUT of less than an eighth of a segment before the flush interval", gp.path)
	default:
	}
	second := mustAppend(t, m, "quiet", 0, b, false)
	put := nextPut(t, gate) // the quiet flush: both batches
	third := mustAppend(t, m, "quiet", 0, b, false)
	fourth := mustAppend(t, m, "quiet", 0, b, false)
	time.Sleep(200 * time.Millisecond)
	select {
	case gp := <-gate.arrived:
		t.Fatalf("%s: a second flush started while the first was in flight", gp.path)
	default:
	}
	put.decide <- false
	for i, r := range []logapi.AppendResult{first, second} {
		if err := r.Durable(testenv.Context(t, 30*time.Second)); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
	}
	// The first flush's end finds the producers quiet with two batches buffered.
	nextPut(t, gate).decide <- false
	for i, r := range []logapi.AppendResult{third, fourth} {
		if err := r.Durable(testenv.Context(t, 30*time.Second)); err != nil {
			t.Fatalf("batch %d: %v", i+2, err)
		}
	}
	if first.BaseOffset != 0 || second.BaseOffset != 1 || third.BaseOffset != 2 || fourth.BaseOffset != 3 {
		t.Fatalf("offsets %d %d %d %d, want 0 1 2 3", first.BaseOffset, second.BaseOffset, third.BaseOffset, fourth.BaseOffset)
	}
}
