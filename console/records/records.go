// Package records is the console's record viewer: it reads records of one partition through
// the Kafka protocol with its own franz-go client, which only fetches (no consumer group,
// no commits, no topic creation).
package records

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Query says which records to read: the latest Limit, or Limit from Offset, or Limit from
// the first record at or after Timestamp (Unix milliseconds).
type Query struct {
	Topic     string
	Partition int32
	Limit     int
	Offset    *int64
	Timestamp *int64
}

// Record is one record. Key and Value are nil for a null key or value.
type Record struct {
	Offset    int64     `json:"offset"`
	Timestamp time.Time `json:"timestamp"`
	Key       []byte    `json:"key"`
	Value     []byte    `json:"value"`
	Headers   []Header  `json:"headers"`
}

// Header is one record header.
type Header struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

// Result is what the viewer read.
type Result struct {
	Topic         string   `json:"topic"`
	Partition     int32    `json:"partition"`
	LogStart      int64    `json:"logStart"`
	HighWatermark int64    `json:"highWatermark"`
	Records       []Record `json:"records"`
}

// Cluster says where brokers are and how far a partition reaches.
type Cluster interface {
	Seeds(ctx context.Context) ([]string, error)
	PartitionBounds(ctx context.Context, topic string, partition int32) (logStart, hwm int64, found bool, err error)
}

// ErrNotFound is returned for a topic or partition the metadata does not list.
var ErrNotFound = errors.New("no such topic or partition")

// Viewer reads records.
type Viewer struct {
	cluster Cluster
	max     int
	timeout time.Duration
}

// New makes a Viewer returning at most max records per read, each read bounded by timeout.
func New(c Cluster, max int, timeout time.Duration) *Viewer {
	return &Viewer{cluster: c, max: max, timeout: timeout}
}

// Max is the most records one read returns.
func (v *Viewer) Max() int { return v.max }

// Read reads the records q asks for, up to the high watermark read from etcd at the start.
func (v *Viewer) Read(ctx context.Context, q Query) (*Result, error) {
	if q.Limit <= 0 || q.Limit > v.max {
		return nil, fmt.Errorf("limit %d: want 1 to %d", q.Limit, v.max)
	}
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	logStart, hwm, found, err := v.cluster.PartitionBounds(ctx, q.Topic, q.Partition)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, ErrNotFound
	}
	res := &Result{Topic: q.Topic, Partition: q.Partition, LogStart: logStart, HighWatermark: hwm, Records: []Record{}}
	if hwm <= logStart {
		return res, nil
	}
	seeds, err := v.cluster.Seeds(ctx)
	if err != nil {
		return nil, err
	}
	var start int64
	switch {
	case q.Offset != nil:
		start = max(*q.Offset, logStart)
	case q.Timestamp != nil:
		if start, err = offsetAfter(ctx, seeds, q, hwm); err != nil {
			return nil, err
		}
	default:
		start = max(logStart, hwm-int64(q.Limit))
	}
	if start >= hwm {
		return res, nil
	}
	cl, err := newClient(seeds, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{q.Topic: {q.Partition: kgo.NewOffset().At(start)}}))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	for len(res.Records) < q.Limit {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			if len(res.Records) > 0 {
				return res, nil
			}
			return nil, fmt.Errorf("read %s/%d through the Kafka protocol: no answer within %s", q.Topic, q.Partition, v.timeout)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return nil, fmt.Errorf("fetch %s/%d: %w", q.Topic, q.Partition, ferr)
		}
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= hwm {
				done = true
				return
			}
			if len(res.Records) >= q.Limit {
				return
			}
			rec := Record{Offset: r.Offset, Timestamp: r.Timestamp.UTC(), Key: r.Key, Value: r.Value, Headers: []Header{}}
			for _, h := range r.Headers {
				rec.Headers = append(rec.Headers, Header{Key: h.Key, Value: h.Value})
			}
			res.Records = append(res.Records, rec)
			if r.Offset == hwm-1 {
				done = true
			}
		})
		if done {
			break
		}
	}
	return res, nil
}

func newClient(seeds []string, opts ...kgo.Opt) (*kgo.Client, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID("kafscale-console"),
		kgo.FetchMaxWait(250 * time.Millisecond),
		kgo.FetchMaxBytes(8 << 20),
	}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
}

// offsetAfter asks the partition's leader (ListOffsets) for the first offset whose record
// is at or after q.Timestamp; hwm when there is none.
func offsetAfter(ctx context.Context, seeds []string, q Query, hwm int64) (int64, error) {
	cl, err := newClient(seeds)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	listed, err := kadm.NewClient(cl).ListOffsetsAfterMilli(ctx, *q.Timestamp, q.Topic)
	if err != nil {
		return 0, fmt.Errorf("list offsets of %s by time: %w", q.Topic, err)
	}
	o, ok := listed.Lookup(q.Topic, q.Partition)
	if !ok {
		return 0, fmt.Errorf("list offsets of %s by time: no answer for partition %d", q.Topic, q.Partition)
	}
	if o.Err != nil {
		return 0, fmt.Errorf("list offsets of %s/%d by time: %w", q.Topic, q.Partition, o.Err)
	}
	if o.Offset < 0 {
		return hwm, nil
	}
	return o.Offset, nil
}
