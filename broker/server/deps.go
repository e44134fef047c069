package server

import (
	"context"

	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The handlers reach storage and metadata only through these two interfaces.
// broker/partition implements Log; internal/metadata implements Cluster.
//
// Errors: implementations return (or wrap) franz-go kerr errors — kerr.NotLeaderForPartition,
// kerr.UnknownTopicOrPartition, kerr.OffsetOutOfRange, kerr.CorruptMessage,
// kerr.KafkaStorageError, kerr.RequestTimedOut, kerr.TopicAlreadyExists, … — and the handlers
// put the matching code in the response with kerr.ErrorForCode's inverse (errors.As on
// *kerr.Error). Any other error is answered as UNKNOWN_SERVER_ERROR and logged.

// Log is the partition data path of this broker.
type Log interface {
	// Append validates (magic 2, lengths) and appends one or more RecordBatch v2 bytes,
	// exactly as the client sent them and with CRC-32Cs the handler has checked
	// (checkBatches: it need not check them again), to a partition this broker leads, assigning
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

// Cluster is this broker's view of the cluster metadata and the topic admin operations.
type Cluster interface {
	// Snapshot is the latest metadata document; never nil once the broker serves.
	Snapshot() *metadata.Snapshot
	// CreateTopic adds a topic with partitions spread over live brokers.
	CreateTopic(ctx context.Context, name string, partitions int32, configs map[string]string) error
	// CreateTopicAssigned adds a topic whose partition i is led by leaders[i], each a live
	// broker (kerr.InvalidReplicaAssignment otherwise).
	CreateTopicAssigned(ctx context.Context, name string, leaders []int32, configs map[string]string) error
	// DeleteTopic removes a topic from the metadata; its data is deleted afterwards.
	DeleteTopic(ctx context.Context, name string) error
	// AlterTopicConfigs changes a topic's alterable configs (metadata.AlterableTopicConfigs)
	// in one compare-and-swap; validateOnly checks against the latest metadata without writing.
	AlterTopicConfigs(ctx context.Context, name string, change metadata.ConfigChange, validateOnly bool) error
	// AddPartitions grows a topic to total partitions; leaders, when not nil, names the
	// leader of each new partition. validateOnly checks without writing.
	AddPartitions(ctx context.Context, name string, total int32, leaders []int32, validateOnly bool) error
	// AllocateProducerID returns a producer id no other InitProducerId in the cluster got.
	AllocateProducerID(ctx context.Context) (int64, error)
}

// Groups is the group coordinator (broker/groups). Each method answers one request of the
// API it is named after, for the groups this broker coordinates (NOT_COORDINATOR for the
// others), and returns within the group's timeouts or when ctx ends; etcd failures become
// COORDINATOR_NOT_AVAILABLE or REQUEST_TIMED_OUT in the response, never a hang.
type Groups interface {
	// Coordinator returns the NodeID coordinating the group in snap, -1 when none.
	Coordinator(snap *metadata.Snapshot, group string) int32
	JoinGroup(ctx context.Context, clientID, clientHost string, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse
	SyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse
	Heartbeat(ctx context.Context, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse
	LeaveGroup(ctx context.Context, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse
	OffsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse
	OffsetFetch(ctx context.Context, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse
	OffsetDelete(ctx context.Context, req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse
	DescribeGroups(ctx context.Context, req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse
	ListGroups(ctx context.Context, req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse
	DeleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse
}
