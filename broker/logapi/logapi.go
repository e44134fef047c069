// Package logapi is the contract between the Kafka protocol layer (broker/server) and the
// data path (broker/partition): the partition log's interface and its result types, and the
// memory both share. It imports nothing of the broker, so the data path depends on no part
// of the protocol layer and the protocol layer on no part of the data path.
//
// Errors: implementations of Log return (or wrap) franz-go kerr errors
// (kerr.NotLeaderForPartition, kerr.UnknownTopicOrPartition, kerr.OffsetOutOfRange,
// kerr.CorruptMessage, kerr.KafkaStorageError, kerr.RequestTimedOut, …), which the handlers
// answer with the matching code; any other error is answered as UNKNOWN_SERVER_ERROR.
package logapi

import "context"

// Log is the partition data path of this broker.
type Log interface {
	// Append validates (magic 2, lengths) and appends one or more RecordBatch v2 bytes,
	// exactly as the client sent them and with CRC-32Cs the handler has checked
	// (it need not check them again), to a partition this broker leads, assigning
	// offsets. With wait it returns only once the data is in S3 and the partition state is
	// committed in etcd (group commit: many Appends share one flush); without wait it
	// returns as soon as the batches are buffered. It must not keep batches (or any part of
	// it) after returning: the caller reuses the buffer.
	Append(ctx context.Context, topic string, partition int32, batches []byte, wait bool) (AppendResult, error)
	// Read returns stored batches starting at the batch containing offset, up to about
	// maxBytes (at least one whole batch when any exists), as stored bytes. The bytes may
	// be shared with a cache: callers must not modify them.
	Read(ctx context.Context, topic string, partition int32, offset int64, maxBytes int32) (ReadResult, error)
	// Offsets returns the log start offset and the high watermark.
	Offsets(ctx context.Context, topic string, partition int32) (logStart, highWatermark int64, err error)
	// OffsetForTimestamp returns the first offset whose batch max timestamp is >= ts, and
	// that timestamp; offset -1 when none.
	OffsetForTimestamp(ctx context.Context, topic string, partition int32, ts int64) (offset, timestamp int64, err error)
	// EndOffsetForEpoch answers OffsetForLeaderEpoch: the end offset of the largest leader
	// epoch <= epoch, and that epoch.
	EndOffsetForEpoch(ctx context.Context, topic string, partition int32, epoch int32) (endOffset int64, leaderEpoch int32, err error)
	// Changed returns a channel that is closed the next time any partition's high watermark
	// moves; long-polling fetches wait on it.
	Changed() <-chan struct{}
}

// Prefetcher is implemented by a Log that can load what the reads of one fetch will need
// together (fewer, parallel requests) before ReadPartitions reads them one by one.
type Prefetcher interface {
	// Prefetch loads what reads will need, within maxBytes for all of them, starts their
	// readahead, and returns when the foreground part is loaded or failed (the reads that
	// follow report errors).
	Prefetch(ctx context.Context, reads []PartitionRead, maxBytes int32)
	// ReadPrefetched is Read without its own readahead (Prefetch planned it for the whole
	// fetch).
	ReadPrefetched(ctx context.Context, topic string, partition int32, offset int64, maxBytes int32) (ReadResult, error)
}

// AppendResult is where an append landed.
type AppendResult struct {
	BaseOffset     int64
	LogStartOffset int64
	// LogAppendTime is -1 (CreateTime topics).
	LogAppendTime int64
	// Durable, set when Append was called with wait=false, blocks until the flush holding
	// this append is in S3 and committed in etcd (nil), or failed (the error). The produce
	// handler appends a connection's pipelined requests in arrival order with wait=false
	// and waits on Durable concurrently, so order is kept without one flush per request.
	Durable func(ctx context.Context) error
}

// ReadResult is a slice of a partition's log.
type ReadResult struct {
	// Batches are stored RecordBatches; they may be the Log's cached bytes themselves, so
	// callers must not modify them.
	Batches        []byte
	HighWatermark  int64
	LogStartOffset int64
}

// PartitionRead is one partition of a fetch: read from Offset up to about MaxBytes
// (the request's PartitionMaxBytes).
type PartitionRead struct {
	Topic     string
	Partition int32
	Offset    int64
	MaxBytes  int32
}

// MemoryReserver is memory shared with other users: Reserve makes room for n bytes (evicting
// what it must), Release gives it back. storage.Cache implements it.
type MemoryReserver interface {
	Reserve(n int64)
	Release(n int64)
}
