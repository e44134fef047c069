// Package rbtest builds RecordBatch v2 bytes the way a producer would, with kmsg, for tests.
package rbtest

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"hash/crc32"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Options shape a batch.
type Options struct {
	// Timestamp is the first record's timestamp; record i gets Timestamp+i.
	Timestamp int64
	// Gzip compresses the records (codec 1), as a producer with compression.type=gzip does.
	Gzip bool
	// ProducerID defaults to -1 (no idempotence) unless Idempotent is set.
	ProducerID int64
	// Idempotent takes ProducerID, ProducerEpoch and BaseSequence as they are (an idempotent
	// producer's batch); without it the epoch and sequence are -1.
	Idempotent    bool
	ProducerEpoch int16
	BaseSequence  int32
	// SameTimestamp gives every record Timestamp (and the batch that max timestamp) instead
	// of Timestamp+i.
	SameTimestamp bool
	// KeyPrefix, when set, gives record i the key KeyPrefix+i.
	KeyPrefix string
	// Headers are given to every record.
	Headers []kmsg.Header
}

// Batch encodes values as one batch with baseOffset 0.
func Batch(values [][]byte, o Options) []byte {
	epoch, seq := int16(-1), int32(-1)
	if o.Idempotent {
		epoch, seq = o.ProducerEpoch, o.BaseSequence
	} else if o.ProducerID == 0 {
		o.ProducerID = -1
	}
	step := int64(1)
	if o.SameTimestamp {
		step = 0
	}
	var records []byte
	for i, v := range values {
		r := kmsg.Record{TimestampDelta64: step * int64(i), OffsetDelta: int32(i), Value: v, Headers: o.Headers}
		if o.KeyPrefix != "" {
			r.Key = []byte(o.KeyPrefix + strconv.Itoa(i))
		}
		body := r.AppendTo(nil)
		r.Length = int32(len(body) - 1) // the zero length varint took one byte
		records = r.AppendTo(records)
	}
	attrs := int16(0)
	if o.Gzip {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		_, _ = w.Write(records)
		_ = w.Close()
		records = buf.Bytes()
		attrs = 1
	}
	b := kmsg.RecordBatch{
		FirstOffset:          0,
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           attrs,
		LastOffsetDelta:      int32(len(values) - 1),
		FirstTimestamp:       o.Timestamp,
		MaxTimestamp:         o.Timestamp + step*int64(len(values)-1),
		ProducerID:           o.ProducerID,
		ProducerEpoch:        epoch,
		FirstSequence:        seq,
		NumRecords:           int32(len(values)),
		Records:              records,
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// Values decodes the record values of stored batches (uncompressed or gzip), with each
// record's absolute offset, using kmsg.
func Values(stored []byte) (offsets []int64, values [][]byte, err error) {
	for len(stored) > 0 {
		var b kmsg.RecordBatch
		if err := b.ReadFrom(stored); err != nil {
			return nil, nil, err
		}
		size := 12 + int(b.Length)
		stored = stored[size:]
		records := b.Records
		if b.Attributes&7 == 1 {
			r, err := gzip.NewReader(bytes.NewReader(records))
			if err != nil {
				return nil, nil, err
			}
			var buf bytes.Buffer
			if _, err := buf.ReadFrom(r); err != nil {
				return nil, nil, err
			}
			records = buf.Bytes()
		}
		for i := int32(0); i < b.NumRecords; i++ {
			var r kmsg.Record
			n, used := binary.Varint(records)
			if used <= 0 {
				return nil, nil, errShort
			}
			end := used + int(n)
			if err := r.ReadFrom(records[:end]); err != nil {
				return nil, nil, err
			}
			records = records[end:]
			offsets = append(offsets, b.FirstOffset+int64(r.OffsetDelta))
			values = append(values, r.Value)
		}
	}
	return offsets, values, nil
}

type shortErr struct{}

func (shortErr) Error() string { return "rbtest: truncated record" }

var errShort error = shortErr{}

// Strings is Batch for string values.
func Strings(o Options, values ...string) []byte {
	vs := make([][]byte, len(values))
	for i, v := range values {
		vs[i] = []byte(v)
	}
	return Batch(vs, o)
}
