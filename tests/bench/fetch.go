package bench

import (
	"context"
	"fmt"

	"github.com/kafscale/kafscale/internal/recordbatch"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// fetchCatchUp reads partition 0 of topic from its first offset until it has seen records
// records, with plain Fetch requests (the sizes a franz-go or Java consumer uses by default:
// 50 MiB per response, 1 MiB per partition, one request in flight) whose record batches are
// walked but never decoded. It measures what the system serves, without the consumer's own
// record decoding, which on this machine costs as much CPU as the broker's whole read path.
// Bytes counts whole record batches as served (headers included).
func fetchCatchUp(ctx context.Context, sys System, topic string, records int64) (CatchUpResult, error) {
	res := CatchUpResult{System: sys.Name}
	// Fetch v12 names topics (v13 and later use topic ids): enough for this.
	cl, err := kgo.NewClient(kgo.SeedBrokers(sys.Addr), kgo.ClientID("kafscale-bench-fetch"), kgo.MaxVersions(kversion.V2_8_0()))
	if err != nil {
		return res, err
	}
	defer cl.Close()
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	meta.Topics = append(meta.Topics, mt)
	mresp, err := meta.RequestWith(ctx, cl)
	if err != nil {
		return res, fmt.Errorf("%s: metadata for %s: %w", sys.Name, topic, err)
	}
	if len(mresp.Topics) != 1 || len(mresp.Topics[0].Partitions) == 0 {
		return res, fmt.Errorf("%s: metadata has no partitions for %s", sys.Name, topic)
	}
	leader := cl.Broker(int(mresp.Topics[0].Partitions[0].Leader))

	s0, err := sys.snapshot(ctx)
	if err != nil {
		return res, err
	}
	var offset int64
	for res.Records < records {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis = 500
		req.MinBytes = 1
		req.MaxBytes = 50 << 20
		req.SessionEpoch = -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = 0
		rp.FetchOffset = offset
		rp.PartitionMaxBytes = 1 << 20
		rp.LogStartOffset = -1
		rp.CurrentLeaderEpoch = -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		kresp, err := leader.Request(ctx, req)
		if err != nil {
			return res, fmt.Errorf("%s: fetch %s at %d: %w", sys.Name, topic, offset, err)
		}
		resp := kresp.(*kmsg.FetchResponse)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return res, fmt.Errorf("%s: fetch %s at %d: %w", sys.Name, topic, offset, err)
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return res, fmt.Errorf("%s: fetch %s/%d at %d: %w", sys.Name, topic, p.Partition, offset, err)
				}
				n, next, size := walkBatches(p.RecordBatches, offset)
				res.Records += n
				res.Bytes += size
				offset = next
			}
		}
	}
	s1, err := sys.snapshot(ctx)
	if err != nil {
		return res, err
	}
	res.Delta = delta(s0, s1)
	return res, nil
}

// walkBatches counts the records of the whole RecordBatches in b that end at or after
// offset, and returns the offset after the last one and their size. A trailing partial batch
// (a fetch cut at its size limit) is ignored, as consumers do.
func walkBatches(b []byte, offset int64) (records, next, size int64) {
	next = offset
	recordbatch.Walk(b, func(h recordbatch.Header, start, end int) bool {
		if h.LastOffset() >= next {
			records += int64(h.NumRecords)
			size += int64(end - start)
			next = h.LastOffset() + 1
		}
		return true
	})
	return records, next, size
}
