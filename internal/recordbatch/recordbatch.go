// Package recordbatch reads and patches the fixed header of Kafka RecordBatch v2 bytes as
// they are stored: KafScale keeps the bytes a producer sent, assigns offsets by rewriting
// baseOffset in place, and never decodes (or decompresses) the records themselves.
//
// Header layout (big endian), 61 bytes:
//
//	 0 baseOffset int64          21 attributes int16       43 producerId int64
//	 8 batchLength int32         23 lastOffsetDelta int32  51 producerEpoch int16
//	12 partitionLeaderEpoch int32 27 firstTimestamp int64  53 baseSequence int32
//	16 magic int8                35 maxTimestamp int64     57 recordCount int32
//	17 crc uint32 (CRC-32C of bytes 21..end)
//
// batchLength counts the bytes after the length field, so a batch occupies 12+batchLength
// bytes. The CRC starts at attributes, so baseOffset and partitionLeaderEpoch can be
// rewritten without recomputing it.
//
// It lives in internal/ rather than under broker/ because it is the codec of Kafka bytes
// with no broker state: the storage tests and the benchmark harness check stored bytes with
// it, and the proxy may read batch headers with it.
package recordbatch

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kerr"
)

// HeaderSize is the size of the RecordBatch v2 header, up to and including recordCount.
const HeaderSize = 61

const (
	offBaseOffset      = 0
	offLength          = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offFirstTimestamp  = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offRecordCount     = 57
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header is the decoded fixed header of one batch.
type Header struct {
	BaseOffset           int64
	Length               int32 // batchLength: bytes after this field
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	FirstTimestamp       int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// Size is the number of bytes the whole batch occupies.
func (h Header) Size() int { return 12 + int(h.Length) }

// LastOffset is the offset of the last record in the batch.
func (h Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Compression is the codec in the low three attribute bits (0 none, 1 gzip, 2 snappy, 3 lz4,
// 4 zstd).
func (h Header) Compression() int8 { return int8(h.Attributes & 0x07) }

// IsControl reports whether the batch holds transaction markers.
func (h Header) IsControl() bool { return h.Attributes&0x20 != 0 }

// ParseHeader decodes the header at the start of b without checking the CRC. b must hold
// at least HeaderSize bytes.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("record batch header needs %d bytes, have %d: %w", HeaderSize, len(b), kerr.CorruptMessage)
	}
	be := binary.BigEndian
	return Header{
		BaseOffset:           int64(be.Uint64(b[offBaseOffset:])),
		Length:               int32(be.Uint32(b[offLength:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[offLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  be.Uint32(b[offCRC:]),
		Attributes:           int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(be.Uint32(b[offLastOffsetDelta:])),
		FirstTimestamp:       int64(be.Uint64(b[offFirstTimestamp:])),
		MaxTimestamp:         int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(be.Uint32(b[offBaseSequence:])),
		NumRecords:           int32(be.Uint32(b[offRecordCount:])),
	}, nil
}

// Batch is one batch inside a larger byte slice.
type Batch struct {
	Header
	// Bytes is the whole batch, aliasing the slice it was split from.
	Bytes []byte
}

// Split validates b as a sequence of whole RecordBatch v2 batches — magic 2, lengths that
// fit, a CRC-32C that matches, a non-negative lastOffsetDelta consistent with recordCount —
// and returns them. Any failure is kerr.CorruptMessage (kerr.UnsupportedForMessageFormat for
// an older magic).
func Split(b []byte) ([]Batch, error) { return split(b, true) }

// SplitChecked is Split for bytes whose CRCs the caller has already verified (the broker's
// produce handler checks every batch before it reaches the log): the same checks but the
// CRC-32C, which is most of Split's cost.
func SplitChecked(b []byte) ([]Batch, error) { return split(b, false) }

func split(b []byte, checkCRC bool) ([]Batch, error) {
	var out []Batch
	err := each(b, checkCRC, func(bt Batch) error {
		out = append(out, bt)
		return nil
	})
	return out, err
}

// Each validates b as Split does and calls fn with each batch in order, allocating nothing;
// it stops at the first invalid batch or the first error fn returns, and returns it.
func Each(b []byte, fn func(Batch) error) error { return each(b, true, fn) }

func each(b []byte, checkCRC bool, fn func(Batch) error) error {
	if len(b) == 0 {
		return fmt.Errorf("no record batches: %w", kerr.CorruptMessage)
	}
	for pos := 0; pos < len(b); {
		h, err := ParseHeader(b[pos:])
		if err != nil {
			return fmt.Errorf("batch at byte %d: %w", pos, err)
		}
		if h.Magic != 2 {
			return fmt.Errorf("batch at byte %d has magic %d, only 2 is supported: %w", pos, h.Magic, kerr.UnsupportedForMessageFormat)
		}
		size := h.Size()
		if h.Length < HeaderSize-12 || size > len(b)-pos {
			return fmt.Errorf("batch at byte %d: length %d does not fit the %d bytes left: %w", pos, h.Length, len(b)-pos, kerr.CorruptMessage)
		}
		if h.LastOffsetDelta < 0 || h.NumRecords < 0 || (h.NumRecords > 0 && h.LastOffsetDelta < h.NumRecords-1) {
			return fmt.Errorf("batch at byte %d: lastOffsetDelta %d with %d records: %w", pos, h.LastOffsetDelta, h.NumRecords, kerr.CorruptMessage)
		}
		raw := b[pos : pos+size]
		if checkCRC {
			if got := Checksum(raw); got != h.CRC {
				return fmt.Errorf("batch at byte %d: crc %08x, computed %08x: %w", pos, h.CRC, got, kerr.CorruptMessage)
			}
		}
		if err := fn(Batch{Header: h, Bytes: raw}); err != nil {
			return err
		}
		pos += size
	}
	return nil
}

// Walk decodes the headers of stored (already validated) batches without checking CRCs,
// calling fn with each batch's header and byte range until fn returns false. It stops at a
// truncated tail.
func Walk(b []byte, fn func(h Header, start, end int) bool) {
	for pos := 0; pos+HeaderSize <= len(b); {
		h, err := ParseHeader(b[pos:])
		if err != nil || h.Length < HeaderSize-12 || pos+h.Size() > len(b) {
			return
		}
		if !fn(h, pos, pos+h.Size()) {
			return
		}
		pos += h.Size()
	}
}

// Checksum computes the CRC-32C of a whole batch (from attributes to the end).
func Checksum(batch []byte) uint32 {
	return crc32.Checksum(batch[offAttributes:], castagnoli)
}

// SetBaseOffset rewrites the batch's baseOffset. The CRC does not cover it.
func SetBaseOffset(batch []byte, offset int64) {
	binary.BigEndian.PutUint64(batch[offBaseOffset:], uint64(offset))
}

// SetPartitionLeaderEpoch rewrites the batch's partitionLeaderEpoch. The CRC does not cover it.
func SetPartitionLeaderEpoch(batch []byte, epoch int32) {
	binary.BigEndian.PutUint32(batch[offLeaderEpoch:], uint32(epoch))
}
