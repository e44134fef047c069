package server

import (
	"encoding/binary"
	"net"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Zero-copy fetch responses. A fetch answer is mostly stored record batches, shared with the
// read cache; encoding it with kmsg copies every byte into a response buffer before the
// kernel copies it again into the socket. fetchFrame instead encodes the fields around the
// batches into one small buffer and returns the frame as a vector — fields, batches,
// fields, … — that net.Buffers writes with writev, so the batches go from the cache to the
// socket directly. The bytes on the wire are exactly kmsg's (fetch_frame_test.go compares
// them for every version and shape).

// fetchFrame returns the whole response frame of resp (size, correlation id, header tags,
// body) as a vector whose field bytes are appended to meta[:0], or ok=false when resp sets
// a field this encoder does not write (anything beyond what handleFetch fills in; the caller
// then encodes it with kmsg). Versions 4 to 12 only, as registered.
func fetchFrame(meta []byte, corr int32, resp *kmsg.FetchResponse) (frame net.Buffers, ok bool) {
	v := resp.Version
	if v < 4 || v > 12 || resp.UnknownTags.Len() > 0 || len(resp.Brokers) > 0 {
		return nil, false
	}
	flexible := v >= 12
	type cut struct {
		at      int // end of the field bytes before the batches
		batches []byte
	}
	var cuts []cut
	b := append(meta[:0], 0, 0, 0, 0) // the frame size, set below
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	if flexible {
		b = append(b, 0) // response header tags
	}
	b = binary.BigEndian.AppendUint32(b, uint32(resp.ThrottleMillis))
	if v >= 7 {
		b = binary.BigEndian.AppendUint16(b, uint16(resp.ErrorCode))
		b = binary.BigEndian.AppendUint32(b, uint32(resp.SessionID))
	}
	b = appendArrayLen(b, len(resp.Topics), flexible)
	for i := range resp.Topics {
		t := &resp.Topics[i]
		if t.UnknownTags.Len() > 0 {
			return nil, false
		}
		b = appendString(b, t.Topic, flexible)
		b = appendArrayLen(b, len(t.Partitions), flexible)
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if !defaultPartitionTags(p) || p.AbortedTransactions != nil {
				return nil, false
			}
			b = binary.BigEndian.AppendUint32(b, uint32(p.Partition))
			b = binary.BigEndian.AppendUint16(b, uint16(p.ErrorCode))
			b = binary.BigEndian.AppendUint64(b, uint64(p.HighWatermark))
			b = binary.BigEndian.AppendUint64(b, uint64(p.LastStableOffset))
			if v >= 5 {
				b = binary.BigEndian.AppendUint64(b, uint64(p.LogStartOffset))
			}
			b = appendArrayLen(b, -1, flexible) // AbortedTransactions: null (no transactions)
			if v >= 11 {
				b = binary.BigEndian.AppendUint32(b, uint32(p.PreferredReadReplica))
			}
			switch {
			case p.RecordBatches == nil && flexible:
				b = append(b, 0)
			case p.RecordBatches == nil:
				b = binary.BigEndian.AppendUint32(b, 0xffffffff)
			case flexible:
				b = binary.AppendUvarint(b, uint64(len(p.RecordBatches))+1)
			default:
				b = binary.BigEndian.AppendUint32(b, uint32(len(p.RecordBatches)))
			}
			if len(p.RecordBatches) > 0 {
				cuts = append(cuts, cut{at: len(b), batches: p.RecordBatches})
			}
			if flexible {
				b = append(b, 0) // partition tags
			}
		}
		if flexible {
			b = append(b, 0) // topic tags
		}
	}
	if flexible {
		b = append(b, 0) // response tags
	}
	size := len(b)
	frame = make(net.Buffers, 0, 2*len(cuts)+1)
	from := 0
	for _, c := range cuts {
		frame = append(frame, b[from:c.at], c.batches)
		from = c.at
		size += len(c.batches)
	}
	frame = append(frame, b[from:])
	binary.BigEndian.PutUint32(b, uint32(size-4))
	return frame, true
}

// defaultPartitionTags reports whether the partition's tagged fields (v12) are all at their
// defaults, which is what handleFetch leaves them at, so none is encoded.
func defaultPartitionTags(p *kmsg.FetchResponseTopicPartition) bool {
	return p.UnknownTags.Len() == 0 &&
		p.DivergingEpoch.Epoch == -1 && p.DivergingEpoch.EndOffset == -1 && p.DivergingEpoch.UnknownTags.Len() == 0 &&
		p.CurrentLeader.LeaderID == -1 && p.CurrentLeader.LeaderEpoch == -1 && p.CurrentLeader.UnknownTags.Len() == 0 &&
		p.SnapshotID.EndOffset == -1 && p.SnapshotID.Epoch == -1 && p.SnapshotID.UnknownTags.Len() == 0
}

// appendArrayLen appends an array length: int32 (-1 for null), or in flexible versions a
// uvarint of length + 1 (0 for null).
func appendArrayLen(b []byte, n int, flexible bool) []byte {
	if flexible {
		return binary.AppendUvarint(b, uint64(n+1))
	}
	return binary.BigEndian.AppendUint32(b, uint32(int32(n)))
}

// appendString appends a non-null string: int16 length, or in flexible versions a uvarint
// of length + 1.
func appendString(b []byte, s string, flexible bool) []byte {
	if flexible {
		b = binary.AppendUvarint(b, uint64(len(s))+1)
	} else {
		b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	}
	return append(b, s...)
}
