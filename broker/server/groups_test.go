package server

import (
	"context"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafscale/kafscale/internal/metadata"
)

// fakeGroups coordinates group "here" on node 0 and "gone" on node 7 (not in the snapshot),
// and records what JoinGroup was told about the client.
type fakeGroups struct {
	mu                   sync.Mutex
	clientID, clientHost string
}

func (f *fakeGroups) Coordinator(_ *metadata.Snapshot, group string) int32 {
	if group == "gone" {
		return 7
	}
	return 0
}

func (f *fakeGroups) JoinGroup(_ context.Context, clientID, clientHost string, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	f.mu.Lock()
	f.clientID, f.clientHost = clientID, clientHost
	f.mu.Unlock()
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.Generation, resp.MemberID, resp.LeaderID = 3, "m", "m"
	return resp
}

func (f *fakeGroups) SyncGroup(_ context.Context, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	return req.ResponseKind().(*kmsg.SyncGroupResponse)
}
func (f *fakeGroups) Heartbeat(_ context.Context, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	return req.ResponseKind().(*kmsg.HeartbeatResponse)
}
func (f *fakeGroups) LeaveGroup(_ context.Context, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	return req.ResponseKind().(*kmsg.LeaveGroupResponse)
}
func (f *fakeGroups) OffsetCommit(_ context.Context, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	return req.ResponseKind().(*kmsg.OffsetCommitResponse)
}
func (f *fakeGroups) OffsetFetch(_ context.Context, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	return req.ResponseKind().(*kmsg.OffsetFetchResponse)
}
func (f *fakeGroups) OffsetDelete(_ context.Context, req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	return req.ResponseKind().(*kmsg.OffsetDeleteResponse)
}
func (f *fakeGroups) DescribeGroups(_ context.Context, req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	return req.ResponseKind().(*kmsg.DescribeGroupsResponse)
}
func (f *fakeGroups) ListGroups(_ context.Context, req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	return req.ResponseKind().(*kmsg.ListGroupsResponse)
}
func (f *fakeGroups) DeleteGroups(_ context.Context, req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	return req.ResponseKind().(*kmsg.DeleteGroupsResponse)
}

// startGroupsBroker starts a server with g as its coordinator (nil: none), set before Serve.
func startGroupsBroker(t *testing.T, g Groups) *testBroker {
	t.Helper()
	return startServer(t, Config{MaxRequestBytes: 1 << 20, MaxInflightPerConn: 64, AutoCreatePartitions: 1}, g)
}

func TestGroupAPIsWithoutCoordinator(t *testing.T) {
	b := startGroupsBroker(t, nil)
	c := b.dial(t)
	na := kerr.CoordinatorNotAvailable.Code
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group = "g"
	commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0}}}}
	fetch8 := kmsg.NewPtrOffsetFetchRequest()
	fetch8.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g"}}
	describe := kmsg.NewPtrDescribeGroupsRequest()
	describe.Groups = []string{"g"}
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{"g"}
	find := kmsg.NewPtrFindCoordinatorRequest()
	find.CoordinatorKeys = []string{"g"}
	for _, tc := range []struct {
		req  kmsg.Request
		code func(kmsg.Response) int16
	}{
		{find, func(r kmsg.Response) int16 { return r.(*kmsg.FindCoordinatorResponse).Coordinators[0].ErrorCode }},
		{kmsg.NewPtrJoinGroupRequest(), func(r kmsg.Response) int16 { return r.(*kmsg.JoinGroupResponse).ErrorCode }},
		{kmsg.NewPtrSyncGroupRequest(), func(r kmsg.Response) int16 { return r.(*kmsg.SyncGroupResponse).ErrorCode }},
		{kmsg.NewPtrHeartbeatRequest(), func(r kmsg.Response) int16 { return r.(*kmsg.HeartbeatResponse).ErrorCode }},
		{kmsg.NewPtrLeaveGroupRequest(), func(r kmsg.Response) int16 { return r.(*kmsg.LeaveGroupResponse).ErrorCode }},
		{commit, func(r kmsg.Response) int16 { return r.(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode }},
		{fetch8, func(r kmsg.Response) int16 { return r.(*kmsg.OffsetFetchResponse).Groups[0].ErrorCode }},
		{kmsg.NewPtrOffsetDeleteRequest(), func(r kmsg.Response) int16 { return r.(*kmsg.OffsetDeleteResponse).ErrorCode }},
		{describe, func(r kmsg.Response) int16 { return r.(*kmsg.DescribeGroupsResponse).Groups[0].ErrorCode }},
		{kmsg.NewPtrListGroupsRequest(), func(r kmsg.Response) int16 { return r.(*kmsg.ListGroupsResponse).ErrorCode }},
		{del, func(r kmsg.Response) int16 { return r.(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode }},
	} {
		if got := tc.code(c.roundTrip(tc.req)); got != na {
			t.Errorf("%s without a coordinator: %v, want COORDINATOR_NOT_AVAILABLE", kmsg.NameForKey(tc.req.Key()), kerr.ErrorForCode(got))
		}
	}
}

func TestFindCoordinator(t *testing.T) {
	fg := &fakeGroups{}
	b := startGroupsBroker(t, fg)
	c := b.dial(t)
	port := b.cluster.Snapshot().Brokers[0].Port

	for v := int16(0); v <= 3; v++ {
		r := kmsg.NewPtrFindCoordinatorRequest()
		r.Version, r.CoordinatorKey = v, "here"
		resp := c.roundTripExact(r).(*kmsg.FindCoordinatorResponse)
		if resp.ErrorCode != 0 || resp.NodeID != 0 || resp.Port != port {
			t.Fatalf("v%d: error %d node %d port %d", v, resp.ErrorCode, resp.NodeID, resp.Port)
		}
	}
	batched := kmsg.NewPtrFindCoordinatorRequest()
	batched.Version, batched.CoordinatorKeys = 4, []string{"here", "gone", ""}
	cs := c.roundTripExact(batched).(*kmsg.FindCoordinatorResponse).Coordinators
	if len(cs) != 3 || cs[0].Key != "here" || cs[0].ErrorCode != 0 || cs[0].Port != port ||
		cs[1].ErrorCode != kerr.CoordinatorNotAvailable.Code || cs[2].ErrorCode != kerr.InvalidGroupID.Code {
		t.Fatalf("v4: %+v", cs)
	}
	// Transactions are not supported: a non-retriable code, so transactional producers fail
	// at once instead of retrying until their deadline.
	for keyType, want := range map[int8]*kerr.Error{1: kerr.TransactionalIDAuthorizationFailed, 2: kerr.InvalidRequest} {
		r := kmsg.NewPtrFindCoordinatorRequest()
		r.Version, r.CoordinatorKey, r.CoordinatorType = 3, "x", keyType
		if got := c.roundTripExact(r).(*kmsg.FindCoordinatorResponse).ErrorCode; got != want.Code {
			t.Fatalf("key type %d: %v, want %v", keyType, kerr.ErrorForCode(got), want)
		}
	}

	join := kmsg.NewPtrJoinGroupRequest()
	join.Group = "here"
	if resp := c.roundTrip(join).(*kmsg.JoinGroupResponse); resp.Generation != 3 {
		t.Fatalf("join answered %+v", resp)
	}
	fg.mu.Lock()
	defer fg.mu.Unlock()
	if fg.clientHost != "/127.0.0.1" || fg.clientID == "" {
		t.Fatalf("JoinGroup told client %q host %q", fg.clientID, fg.clientHost)
	}
}
