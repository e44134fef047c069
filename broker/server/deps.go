package server

import (
	"context"

	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The handlers reach storage through logapi.Log (implemented by broker/partition), the
// metadata through Cluster (implemented by internal/metadata) and the groups through Groups
// (implemented by broker/groups).
//
// Errors: implementations return (or wrap) franz-go kerr errors — kerr.NotLeaderForPartition,
// kerr.UnknownTopicOrPartition, kerr.OffsetOutOfRange, kerr.CorruptMessage,
// kerr.KafkaStorageError, kerr.RequestTimedOut, kerr.TopicAlreadyExists, … — and the handlers
// put the matching code in the response with kerr.ErrorForCode's inverse (errors.As on
// *kerr.Error). Any other error is answered as UNKNOWN_SERVER_ERROR and logged.

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
