package metadata

import "sort"

// PartitionState is the document at Keys.Partition(topic, p): where a partition's committed
// log lives. Only the partition's leader writes it, and every write is fenced (see
// docs/storage.md): a new leader at epoch E claims it only if the stored LeaderEpoch is
// lower (or the key is absent), and each commit compares the key's ModRevision with the one
// the leader last wrote, so a deposed leader can never overwrite it.
//
// It stays bounded: at most MaxChunks chunks and MaxArchives archive references live here;
// older index entries move into index sections stored inside S3 objects (see Archives).
type PartitionState struct {
	// TopicID is the topic's UUID; a state left by a deleted topic of the same name (a
	// different ID) is treated as absent.
	TopicID [16]byte `json:"topicId"`
	// Leader and LeaderEpoch are the broker that last claimed the partition and its epoch.
	Leader      int32 `json:"leader"`
	LeaderEpoch int32 `json:"leaderEpoch"`
	// LogStartOffset is the first offset still readable.
	LogStartOffset int64 `json:"logStart"`
	// HighWatermark is the next offset to assign; everything below it is committed.
	HighWatermark int64 `json:"hwm"`
	// Epochs is the leader epoch history, oldest first: each epoch with the first offset
	// written under it. It answers OffsetForLeaderEpoch.
	Epochs []EpochStart `json:"epochs,omitempty"`
	// Chunks index the newest committed data, one entry per flush that carried this
	// partition, oldest first and contiguous in offsets.
	Chunks []Chunk `json:"chunks,omitempty"`
	// Archives reference older index entries, oldest first, contiguous and ending where
	// Chunks begin. Each points at an IndexSection stored in an S3 object.
	Archives []IndexRef `json:"archives,omitempty"`
	// Producers are the idempotent producers that appended to the partition, by producer
	// id: their epoch and newest batches, so any leader drops a retried duplicate. Idle
	// ones expire (KAFSCALE_PRODUCER_ID_EXPIRATION_MS). With ProducersRef set, it holds
	// only the producers that changed since that section was written (they override it).
	Producers map[int64]*ProducerState `json:"producers,omitempty"`
	// ProducersRef points at a ProducerSection stored in an S3 object: every producer as
	// of the flush that wrote it. It keeps the per-flush etcd write small when a partition
	// remembers many producers (states written before it existed have none).
	ProducersRef *SectionRef `json:"producersRef,omitempty"`
	// ProducerBase is the content of the ProducersRef section, loaded by the leader; it is
	// not stored in etcd. Never mutated.
	ProducerBase map[int64]*ProducerState `json:"-"`
}

// SectionRef locates a section (a byte range) of an S3 object.
type SectionRef struct {
	Object string `json:"o"`
	Pos    int64  `json:"p"`
	Len    int64  `json:"n"`
}

// ProducerSection is the producer state stored in an S3 object (see ProducersRef).
type ProducerSection struct {
	Producers map[int64]*ProducerState `json:"producers"`
}

// MaxInlineProducers bounds the changed producers a state carries next to its
// ProducersRef: beyond it the flush writes a new ProducerSection holding all of them.
const MaxInlineProducers = 16

// AllProducers returns the effective producer state: ProducerBase overridden by Producers.
// The values are shared (immutable); the map is new.
func (s *PartitionState) AllProducers() map[int64]*ProducerState {
	out := make(map[int64]*ProducerState, len(s.ProducerBase)+len(s.Producers))
	for k, v := range s.ProducerBase {
		out[k] = v
	}
	for k, v := range s.Producers {
		out[k] = v
	}
	return out
}

// SetProducers records view as the state's producers. It keeps the current ProducersRef
// and stores only the producers that differ from its section, unless more than
// MaxInlineProducers differ or were forgotten: then it returns true, and the caller writes
// view as a new ProducerSection and calls SetProducerSection.
func (s *PartitionState) SetProducers(view map[int64]*ProducerState) (newSection bool) {
	base := s.ProducerBase
	if s.ProducersRef == nil && len(view) <= MaxInlineProducers {
		s.Producers = CloneProducers(view)
		return false
	}
	var changed map[int64]*ProducerState
	for pid, st := range view {
		if base[pid] != st {
			if changed == nil {
				changed = map[int64]*ProducerState{}
			}
			changed[pid] = st
			if len(changed) > MaxInlineProducers {
				return true
			}
		}
	}
	gone := 0
	for pid := range base {
		if _, ok := view[pid]; !ok {
			gone++
		}
	}
	if gone > MaxInlineProducers {
		return true
	}
	s.Producers = changed
	return false
}

// SetProducerSection makes view, just stored at ref, the state's producer section.
func (s *PartitionState) SetProducerSection(view map[int64]*ProducerState, ref SectionRef) {
	s.ProducersRef, s.ProducerBase, s.Producers = &ref, view, nil
}

// Bounds of a PartitionState (see docs/storage.md, "The index").
const (
	// MaxChunks chunks stay in etcd; beyond that the oldest half moves to an IndexSection.
	// (Earlier versions kept 64; a state holding more is archived down at its next flush.)
	MaxChunks = 16
	// MaxArchives references stay in etcd; beyond that the oldest half is folded into one
	// IndexSection of references (a tree, so lookups stay logarithmic).
	MaxArchives = 16
	// MaxEpochs leader epochs are remembered.
	MaxEpochs = 64
)

// EpochStart is one leader epoch and the first offset written under it.
type EpochStart struct {
	Epoch       int32 `json:"e"`
	StartOffset int64 `json:"s"`
}

// Chunk is where one contiguous offset range of a partition is stored: a byte range of an
// S3 object holding whole RecordBatches.
type Chunk struct {
	// Object is the object name relative to the S3 namespace.
	Object string `json:"o"`
	// Pos and Len are the byte range within the object.
	Pos int64 `json:"p"`
	Len int64 `json:"n"`
	// Base and Last are the first and last offset stored in the range.
	Base int64 `json:"b"`
	Last int64 `json:"l"`
	// MaxTimestamp is the largest batch max timestamp in the range.
	MaxTimestamp int64 `json:"t"`
}

// IndexRef points at an IndexSection stored in an S3 object.
type IndexRef struct {
	Object       string `json:"o"`
	Pos          int64  `json:"p"`
	Len          int64  `json:"n"`
	Base         int64  `json:"b"`
	Last         int64  `json:"l"`
	MaxTimestamp int64  `json:"t"`
	// Level is 1 for a section of chunks, n+1 for a section of level-n (or lower) refs.
	Level int `json:"v"`
	// Size is the data bytes the referenced chunks hold (retention.bytes); 0 in references
	// written before it was recorded.
	Size int64 `json:"z,omitempty"`
}

// IndexSection is an archived part of a partition's index, stored as JSON inside an S3
// object: either chunks (level 1) or references to older sections.
type IndexSection struct {
	Chunks []Chunk    `json:"chunks,omitempty"`
	Refs   []IndexRef `json:"refs,omitempty"`
}

// Clone returns a deep copy.
func (s *PartitionState) Clone() *PartitionState {
	c := *s
	c.Epochs = append([]EpochStart(nil), s.Epochs...)
	c.Chunks = append([]Chunk(nil), s.Chunks...)
	c.Archives = append([]IndexRef(nil), s.Archives...)
	c.Producers = CloneProducers(s.Producers)
	return &c
}

// AddEpoch records that epoch starts at offset. Epochs that never wrote anything (the
// same start offset as the new one) are kept, as Kafka does, so their end offset is
// answerable; the history is capped at MaxEpochs.
func (s *PartitionState) AddEpoch(epoch int32, offset int64) {
	if n := len(s.Epochs); n > 0 && s.Epochs[n-1].Epoch >= epoch {
		return
	}
	s.Epochs = append(s.Epochs, EpochStart{Epoch: epoch, StartOffset: offset})
	if len(s.Epochs) > MaxEpochs {
		s.Epochs = append([]EpochStart(nil), s.Epochs[len(s.Epochs)-MaxEpochs:]...)
	}
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch: for the largest known epoch <= epoch, the
// first offset of the next epoch (or the high watermark for the current one). It returns
// (-1, -1) when epoch precedes every known epoch.
func (s *PartitionState) EndOffsetForEpoch(epoch int32) (int64, int32) {
	i := sort.Search(len(s.Epochs), func(i int) bool { return s.Epochs[i].Epoch > epoch })
	if i == 0 {
		return -1, -1
	}
	if i == len(s.Epochs) {
		return s.HighWatermark, s.Epochs[i-1].Epoch
	}
	return s.Epochs[i].StartOffset, s.Epochs[i-1].Epoch
}

// FindChunk returns the index of the chunk holding offset, or -1 when offset is not in
// Chunks (archived, or outside the log).
func (s *PartitionState) FindChunk(offset int64) int {
	return findChunk(s.Chunks, offset)
}

func findChunk(chunks []Chunk, offset int64) int {
	i := sort.Search(len(chunks), func(i int) bool { return chunks[i].Last >= offset })
	if i < len(chunks) && chunks[i].Base <= offset {
		return i
	}
	return -1
}

// FindChunk returns the index of the chunk of a section holding offset, or -1.
func (s *IndexSection) FindChunk(offset int64) int { return findChunk(s.Chunks, offset) }

// FindRef returns the index of the reference covering offset, or -1.
func FindRef(refs []IndexRef, offset int64) int {
	i := sort.Search(len(refs), func(i int) bool { return refs[i].Last >= offset })
	if i < len(refs) && refs[i].Base <= offset {
		return i
	}
	return -1
}

// ArchiveChunks moves the oldest chunks out when there are more than MaxChunks, keeping the
// newest MaxChunks/2+1 (a state written with a larger bound shrinks in one step). It
// returns the section to store and a reference whose Object, Pos and Len the caller fills
// before appending it with AddArchive; ok is false when nothing needs to move.
func (s *PartitionState) ArchiveChunks() (IndexSection, IndexRef, bool) {
	if len(s.Chunks) <= MaxChunks {
		return IndexSection{}, IndexRef{}, false
	}
	n := len(s.Chunks) - (MaxChunks/2 + 1)
	moved := append([]Chunk(nil), s.Chunks[:n]...)
	s.Chunks = append([]Chunk(nil), s.Chunks[n:]...)
	ref := IndexRef{Base: moved[0].Base, Last: moved[n-1].Last, Level: 1}
	for _, c := range moved {
		ref.MaxTimestamp = max(ref.MaxTimestamp, c.MaxTimestamp)
		ref.Size += c.Len
	}
	return IndexSection{Chunks: moved}, ref, true
}

// FoldArchives folds the oldest half of Archives into one section of references when
// there are more than MaxArchives. The returned reference replaces them: the caller fills
// its location and calls PrependArchive.
func (s *PartitionState) FoldArchives() (IndexSection, IndexRef, bool) {
	if len(s.Archives) <= MaxArchives {
		return IndexSection{}, IndexRef{}, false
	}
	n := len(s.Archives) / 2
	moved := append([]IndexRef(nil), s.Archives[:n]...)
	s.Archives = append([]IndexRef(nil), s.Archives[n:]...)
	ref := IndexRef{Base: moved[0].Base, Last: moved[n-1].Last}
	for _, r := range moved {
		ref.MaxTimestamp = max(ref.MaxTimestamp, r.MaxTimestamp)
		ref.Level = max(ref.Level, r.Level+1)
		ref.Size += r.Size
	}
	return IndexSection{Refs: moved}, ref, true
}

// AddArchive appends a reference made by ArchiveChunks.
func (s *PartitionState) AddArchive(ref IndexRef) { s.Archives = append(s.Archives, ref) }

// PrependArchive puts a reference made by FoldArchives in front.
func (s *PartitionState) PrependArchive(ref IndexRef) {
	s.Archives = append([]IndexRef{ref}, s.Archives...)
}

// ApplyRetention drops, oldest first, the whole index units (archive references, then
// chunks) that retention allows to delete, and moves LogStartOffset to the first offset
// kept. A unit goes while its max timestamp is older than now-retentionMs, or while the
// bytes kept without it still reach retentionBytes (negative values are unlimited). The
// newest chunk always stays (the active tail), and a unit with no timestamp (-1) is never
// expired by time. It returns the new state and true, or (nil, false) when nothing goes.
func (s *PartitionState) ApplyRetention(nowMs, retentionMs, retentionBytes int64) (*PartitionState, bool) {
	if len(s.Chunks) == 0 {
		return nil, false
	}
	type unit struct{ size, maxTS int64 }
	units := make([]unit, 0, len(s.Archives)+len(s.Chunks))
	var total int64
	for _, r := range s.Archives {
		units = append(units, unit{r.Size, r.MaxTimestamp})
		total += r.Size
	}
	for _, c := range s.Chunks {
		units = append(units, unit{c.Len, c.MaxTimestamp})
		total += c.Len
	}
	drop := 0
	for drop < len(units)-1 {
		u := units[drop]
		expired := retentionMs >= 0 && u.maxTS >= 0 && nowMs-u.maxTS > retentionMs
		tooBig := retentionBytes >= 0 && total-u.size >= retentionBytes
		if !expired && !tooBig {
			break
		}
		total -= u.size
		drop++
	}
	if drop == 0 {
		return nil, false
	}
	next := s.Clone()
	if drop <= len(s.Archives) {
		next.Archives = append([]IndexRef(nil), s.Archives[drop:]...)
	} else {
		next.Archives = nil
		next.Chunks = append([]Chunk(nil), s.Chunks[drop-len(s.Archives):]...)
	}
	first := next.Chunks[0].Base
	if len(next.Archives) > 0 {
		first = next.Archives[0].Base
	}
	next.LogStartOffset = max(s.LogStartOffset, first)
	return next, true
}

// Referenced calls fn with every object the state references directly: its chunks' and
// its archive references' objects. Objects referenced by the archived sections themselves
// must be found by loading them (see broker/partition's sweeper).
func (s *PartitionState) Referenced(fn func(object string)) {
	for _, c := range s.Chunks {
		fn(c.Object)
	}
	for _, r := range s.Archives {
		fn(r.Object)
	}
	if s.ProducersRef != nil {
		fn(s.ProducersRef.Object)
	}
}
