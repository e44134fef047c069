package main

// The e2e tier's long-running clients (tests/e2e): producers and a consumer group that keep
// running, inside the cluster, while the release is upgraded, rolled back and rolled
// forward, and then account for every record. They stop when their stop file (a ConfigMap
// key mounted as a file) says "stop", and end with one line "RESULT <json>" that the test
// reads from the pod's log.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kafscale/kafscale/internal/flowresult"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// stopped reports whether the stop file says "stop"; a missing file means run.
func stopped(path string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.TrimSpace(string(b)) == "stop"
}

// ranges compresses sorted ints into [first, last] runs.
func ranges(xs []int) [][2]int {
	sort.Ints(xs)
	var out [][2]int
	for _, x := range xs {
		if n := len(out); n > 0 && out[n-1][1]+1 == x {
			out[n-1][1] = x
			continue
		}
		out = append(out, [2]int{x, x})
	}
	return out
}

// flowProduce writes records "<id> <n>" (n counting per partition from 0) round robin to
// partitions 0..partitions-1 at rate records per second, idempotent with acks=all, until the
// stop file says stop; then it flushes and reports. franz-go retries every retriable error
// without limit (no delivery timeout): a broker or proxy rolling only delays records.
func flowProduce(bootstrap, topic, id string, partitions, rate int, stopFile string, out io.Writer) error {
	if topic == "" || id == "" || partitions < 1 || rate < 1 || stopFile == "" {
		return errors.New("-topic, -id, -partitions, -rate and -stop-file are required")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ClientID("kafscale-e2e-producer-"+id), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.WithLogger(kgo.BasicLogger(out, kgo.LogLevelWarn, nil)))
	if err != nil {
		return err
	}
	defer cl.Close()
	var mu sync.Mutex
	res := flowresult.Producer{ID: id, Acked: map[int32][][2]int{}}
	acked := map[int32][]int{}
	lastOffset := map[int32]int64{}
	next := make([]int, partitions)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	progress := time.Now()
	for i := 0; ; i++ {
		if i%rate == 0 && stopped(stopFile) {
			break
		}
		<-tick.C
		p := int32(i % partitions)
		n := next[p]
		next[p]++
		res.Sent++
		rec := &kgo.Record{Partition: p, Key: []byte(id), Value: []byte(id + " " + strconv.Itoa(n))}
		cl.Produce(context.Background(), rec, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Failed = append(res.Failed, fmt.Sprintf("partition %d record %d: %v", p, n, err))
				return
			}
			if last, ok := lastOffset[p]; ok && r.Offset <= last {
				res.Disorder = append(res.Disorder, fmt.Sprintf("partition %d record %d acknowledged at offset %d after offset %d", p, n, r.Offset, last))
			}
			lastOffset[p] = r.Offset
			acked[p] = append(acked[p], n)
		})
		if time.Since(progress) > 30*time.Second {
			progress = time.Now()
			mu.Lock()
			a := 0
			for _, xs := range acked {
				a += len(xs)
			}
			fmt.Fprintf(out, "progress %s: sent %d acked %d failed %d\n", time.Now().UTC().Format("15:04:05"), res.Sent, a, len(res.Failed))
			mu.Unlock()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush after %d records: %w", res.Sent, err)
	}
	mu.Lock()
	defer mu.Unlock()
	for p, xs := range acked {
		res.Acked[p] = ranges(xs)
	}
	return flowresult.Write(out, res)
}

// flowConsume reads topic in consumer group group, committing after every poll, until the
// stop file says stop and it has read to the end offsets the topic had then. It checks what
// only it can see: no record (producer id and number) at two offsets, one value per offset
// however often it is delivered, each producer's numbers increasing with the offset in
// every partition, and the group's committed offsets never going backwards. Then it leaves
// the group and reports the committed and end offsets a fresh client sees.
func flowConsume(bootstrap, topic, group, stopFile string, out io.Writer) error {
	if topic == "" || group == "" || stopFile == "" {
		return errors.New("-topic, -group and -stop-file are required")
	}
	opts := []kgo.Opt{kgo.SeedBrokers(bootstrap), kgo.ClientID("kafscale-e2e-consumer"),
		kgo.WithLogger(kgo.BasicLogger(out, kgo.LogLevelWarn, nil))}
	cl, err := kgo.NewClient(append(opts, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		return err
	}
	adm := kadm.NewClient(cl)
	res := flowresult.Consumer{Read: map[int32]map[string][][2]int{}}
	type rec struct {
		id string
		n  int
	}
	byOffset := map[int32]map[int64]rec{}
	where := map[int32]map[rec]int64{}
	committed := map[int32]int64{} // highest committed offset observed per partition
	next := map[int32]int64{}      // one past the highest offset read per partition
	var ends map[int32]int64
	violate := func(format string, args ...any) {
		s := fmt.Sprintf(format, args...)
		res.Violations = append(res.Violations, s)
		fmt.Fprintln(out, "VIOLATION", s)
	}
	checkCommitted := func(ctx context.Context) {
		offs, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return // the coordinator may be rolling; checked again after the next poll
		}
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Err != nil || o.Topic != topic {
				return
			}
			if prev, ok := committed[o.Partition]; ok && o.At < prev {
				violate("partition %d: committed offset went back from %d to %d", o.Partition, prev, o.At)
			}
			if o.At > committed[o.Partition] {
				committed[o.Partition] = o.At
			}
		})
	}
	progress := time.Now()
	for {
		if ends == nil && stopped(stopFile) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			listed, err := adm.ListEndOffsets(ctx, topic)
			cancel()
			if err == nil && listed.Error() == nil {
				ends = map[int32]int64{}
				listed.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
				fmt.Fprintf(out, "stop: reading to the end offsets %v\n", ends)
			}
		}
		if ends != nil {
			done := true
			for p, end := range ends {
				if next[p] < end {
					done = false
				}
			}
			if done {
				break
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		fetches := cl.PollFetches(ctx)
		cancel()
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				fmt.Fprintf(out, "fetch %s/%d: %v (retrying)\n", t, p, err)
			}
		})
		fetches.EachRecord(func(r *kgo.Record) {
			id, num, ok := strings.Cut(string(r.Value), " ")
			n, err := strconv.Atoi(num)
			if !ok || err != nil {
				violate("partition %d offset %d: unexpected value %q", r.Partition, r.Offset, r.Value)
				return
			}
			v := rec{id, n}
			if byOffset[r.Partition] == nil {
				byOffset[r.Partition], where[r.Partition] = map[int64]rec{}, map[rec]int64{}
			}
			if res.Records == 0 {
				fmt.Fprintf(out, "first record: partition %d offset %d %q\n", r.Partition, r.Offset, r.Value)
			}
			res.Records++
			if r.Offset+1 > next[r.Partition] {
				next[r.Partition] = r.Offset + 1
			}
			if old, ok := byOffset[r.Partition][r.Offset]; ok {
				res.Redelivered++
				if old != v {
					violate("partition %d offset %d read as %v, then as %v", r.Partition, r.Offset, old, v)
				}
				return
			}
			if at, ok := where[r.Partition][v]; ok {
				violate("partition %d: record %s %d at offsets %d and %d (a duplicate)", r.Partition, id, n, at, r.Offset)
			}
			byOffset[r.Partition][r.Offset] = v
			where[r.Partition][v] = r.Offset
		})
		ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			fmt.Fprintf(out, "commit: %v (retrying after the next poll)\n", err)
		}
		checkCommitted(ctx)
		cancel()
		if time.Since(progress) > 30*time.Second {
			progress = time.Now()
			fmt.Fprintf(out, "progress %s: read %d redelivered %d committed %v\n", time.Now().UTC().Format("15:04:05"), res.Records, res.Redelivered, committed)
		}
	}
	// The last commit must land: retried while the coordinator answers errors.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := cl.CommitUncommittedOffsets(ctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			cl.Close()
			return fmt.Errorf("final commit: %w", err)
		}
		time.Sleep(2 * time.Second)
	}
	cl.Close() // leaves the group

	for p, offs := range byOffset {
		sorted := make([]int64, 0, len(offs))
		for o := range offs {
			sorted = append(sorted, o)
		}
		sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
		last := map[string]int{}
		nums := map[string][]int{}
		for _, o := range sorted {
			v := offs[o]
			if prev, ok := last[v.id]; ok && v.n <= prev {
				violate("partition %d offset %d: record %s %d after %s %d (out of order)", p, o, v.id, v.n, v.id, prev)
			}
			last[v.id] = v.n
			nums[v.id] = append(nums[v.id], v.n)
		}
		res.Read[p] = map[string][][2]int{}
		for id, xs := range nums {
			res.Read[p][id] = ranges(xs)
		}
	}

	fresh, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer fresh.Close()
	fadm := kadm.NewClient(fresh)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	offs, err := fadm.FetchOffsets(ctx, group)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		return fmt.Errorf("committed offsets of %s: %w", group, err)
	}
	listed, err := fadm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	res.Committed, res.End = map[int32]int64{}, map[int32]int64{}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic {
			res.Committed[o.Partition] = o.At
		}
	})
	listed.Each(func(o kadm.ListedOffset) { res.End[o.Partition] = o.Offset })
	return flowresult.Write(out, res)
}
