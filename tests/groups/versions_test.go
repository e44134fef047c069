package groups_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/kafscale/kafscale/tests/testenv"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawConn speaks the Kafka protocol with exact request versions (clients negotiate the
// highest; these tests walk every advertised version).
type rawConn struct {
	t    *testing.T
	nc   net.Conn
	corr int32
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc}
}

// do sends req at its version and decodes the answer; the deadline only bounds a hang.
func (c *rawConn) do(req kmsg.Request, timeout time.Duration) kmsg.Response {
	c.t.Helper()
	c.corr++
	buf := make([]byte, 4, 256)
	buf = kbin.AppendInt16(buf, req.Key())
	buf = kbin.AppendInt16(buf, req.GetVersion())
	buf = kbin.AppendInt32(buf, c.corr)
	buf = kbin.AppendNullableString(buf, kmsg.StringPtr("raw-test"))
	if req.IsFlexible() {
		buf = append(buf, 0) // no header tags
	}
	buf = req.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	_ = c.nc.SetDeadline(time.Now().Add(timeout))
	if _, err := c.nc.Write(buf); err != nil {
		c.t.Fatalf("%s v%d: write: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	var size [4]byte
	if _, err := io.ReadFull(c.nc, size[:]); err != nil {
		c.t.Fatalf("%s v%d: read: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.nc, body); err != nil {
		c.t.Fatalf("%s v%d: read: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	if corr := int32(binary.BigEndian.Uint32(body)); corr != c.corr {
		c.t.Fatalf("correlation id %d, want %d", corr, c.corr)
	}
	body = body[4:]
	resp := req.ResponseKind()
	if resp.IsFlexible() && req.Key() != 18 {
		body = body[1:] // no header tags
	}
	if err := resp.ReadFrom(body); err != nil {
		c.t.Fatalf("%s v%d: decode response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp
}

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	var w int16
	if want != nil {
		w = want.Code
	}
	if got != w {
		t.Fatalf("%s: %v (%d), want %v", what, kerr.ErrorForCode(got), got, want)
	}
}

// TestEveryAdvertisedGroupVersion runs a whole group life cycle at every version the broker
// advertises: find the coordinator, join (with MEMBER_ID_REQUIRED from v4), sync, heartbeat,
// commit, fetch, describe, list, leave, delete.
func TestEveryAdvertisedGroupVersion(t *testing.T) {
	c := newCluster(t)
	b := c.startBroker(1, 0)
	c.createTopic(b, "vt", 2)
	rc := dialRaw(t, b.addr())

	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	av.ClientSoftwareName, av.ClientSoftwareVersion = "raw", "1"
	maxOf := map[int16]int16{}
	for _, k := range rc.do(av, 10*time.Second).(*kmsg.ApiVersionsResponse).ApiKeys {
		maxOf[k.ApiKey] = k.MaxVersion
	}
	for key, want := range map[int16]int16{8: 8, 9: 8, 10: 4, 11: 9, 12: 4, 13: 5, 14: 5, 15: 5, 16: 4, 42: 2, 47: 0} {
		if maxOf[key] != want {
			t.Fatalf("%s advertised up to v%d, want v%d", kmsg.NameForKey(key), maxOf[key], want)
		}
	}

	// FindCoordinator v0-v4 (v4 batched); transaction keys are refused
	for v := int16(0); v <= maxOf[10]; v++ {
		r := kmsg.NewPtrFindCoordinatorRequest()
		r.Version = v
		r.CoordinatorKey, r.CoordinatorKeys = "vg", []string{"vg", "other"}
		resp := rc.do(r, 10*time.Second).(*kmsg.FindCoordinatorResponse)
		if v >= 4 {
			if len(resp.Coordinators) != 2 || resp.Coordinators[0].NodeID != 1 || resp.Coordinators[1].Port != int32(b.port) {
				t.Fatalf("FindCoordinator v%d: %+v", v, resp.Coordinators)
			}
			continue
		}
		wantCode(t, fmt.Sprintf("FindCoordinator v%d", v), resp.ErrorCode, nil)
		if resp.NodeID != 1 || resp.Port != int32(b.port) || resp.Host != "127.0.0.1" {
			t.Fatalf("FindCoordinator v%d: %d %s:%d", v, resp.NodeID, resp.Host, resp.Port)
		}
	}
	txn := kmsg.NewPtrFindCoordinatorRequest()
	txn.Version, txn.CoordinatorKey, txn.CoordinatorType = 3, "txn", 1
	// Transactions are not supported: a code clients treat as fatal, so they fail at once.
	wantCode(t, "FindCoordinator of a transaction", rc.do(txn, 10*time.Second).(*kmsg.FindCoordinatorResponse).ErrorCode, kerr.TransactionalIDAuthorizationFailed)

	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"vt"}
	for v := int16(0); v <= maxOf[11]; v++ {
		group := fmt.Sprintf("vg-%d", v)
		join := kmsg.NewPtrJoinGroupRequest()
		join.Version, join.Group, join.ProtocolType = v, group, "consumer"
		join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = 10000, 10000
		join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: meta.AppendTo(nil)}}
		jr := rc.do(join, 30*time.Second).(*kmsg.JoinGroupResponse)
		if v >= 4 {
			wantCode(t, fmt.Sprintf("JoinGroup v%d first", v), jr.ErrorCode, kerr.MemberIDRequired)
			join.MemberID = jr.MemberID
			jr = rc.do(join, 30*time.Second).(*kmsg.JoinGroupResponse)
		}
		wantCode(t, fmt.Sprintf("JoinGroup v%d", v), jr.ErrorCode, nil)
		if jr.Generation != 1 || jr.LeaderID != jr.MemberID || len(jr.Members) != 1 {
			t.Fatalf("JoinGroup v%d: gen %d leader %q members %d", v, jr.Generation, jr.LeaderID, len(jr.Members))
		}
		member := jr.MemberID

		syncV := min(v, maxOf[14])
		sr := kmsg.NewPtrSyncGroupRequest()
		sr.Version, sr.Group, sr.Generation, sr.MemberID = syncV, group, 1, member
		sr.ProtocolType, sr.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
		sr.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: member, MemberAssignment: []byte("assignment")}}
		sresp := rc.do(sr, 30*time.Second).(*kmsg.SyncGroupResponse)
		wantCode(t, fmt.Sprintf("SyncGroup v%d", syncV), sresp.ErrorCode, nil)
		if string(sresp.MemberAssignment) != "assignment" {
			t.Fatalf("SyncGroup v%d: assignment %q", syncV, sresp.MemberAssignment)
		}

		hbV := min(v, maxOf[12])
		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Version, hb.Group, hb.Generation, hb.MemberID = hbV, group, 1, member
		wantCode(t, fmt.Sprintf("Heartbeat v%d", hbV), rc.do(hb, 10*time.Second).(*kmsg.HeartbeatResponse).ErrorCode, nil)

		commitV := min(v, maxOf[8])
		oc := kmsg.NewPtrOffsetCommitRequest()
		oc.Version, oc.Group, oc.Generation, oc.MemberID = commitV, group, 1, member
		oc.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "vt", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 1, Offset: int64(100 + v), LeaderEpoch: -1, Metadata: kmsg.StringPtr("meta")}}}}
		ocr := rc.do(oc, 10*time.Second).(*kmsg.OffsetCommitResponse)
		wantCode(t, fmt.Sprintf("OffsetCommit v%d", commitV), ocr.Topics[0].Partitions[0].ErrorCode, nil)

		fetchV := min(v, maxOf[9])
		of := kmsg.NewPtrOffsetFetchRequest()
		of.Version = fetchV
		var off int64
		if fetchV >= 8 {
			of.Groups = []kmsg.OffsetFetchRequestGroup{{Group: group, Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "vt", Partitions: []int32{0, 1}}}}}
			g := rc.do(of, 10*time.Second).(*kmsg.OffsetFetchResponse).Groups[0]
			wantCode(t, "OffsetFetch v8", g.ErrorCode, nil)
			if g.Topics[0].Partitions[0].Offset != -1 {
				t.Fatalf("uncommitted partition at %d", g.Topics[0].Partitions[0].Offset)
			}
			off = g.Topics[0].Partitions[1].Offset
		} else {
			of.Group = group
			of.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "vt", Partitions: []int32{0, 1}}}
			fr := rc.do(of, 10*time.Second).(*kmsg.OffsetFetchResponse)
			wantCode(t, fmt.Sprintf("OffsetFetch v%d", fetchV), fr.ErrorCode, nil)
			if fr.Topics[0].Partitions[0].Offset != -1 {
				t.Fatalf("uncommitted partition at %d", fr.Topics[0].Partitions[0].Offset)
			}
			off = fr.Topics[0].Partitions[1].Offset
		}
		if off != int64(100+v) {
			t.Fatalf("OffsetFetch v%d: %d, want %d", fetchV, off, 100+v)
		}

		descV := min(v, maxOf[15])
		dr := kmsg.NewPtrDescribeGroupsRequest()
		dr.Version, dr.Groups = descV, []string{group}
		d := rc.do(dr, 10*time.Second).(*kmsg.DescribeGroupsResponse).Groups[0]
		if d.State != "Stable" || d.Protocol != "range" || len(d.Members) != 1 || string(d.Members[0].MemberAssignment) != "assignment" {
			t.Fatalf("DescribeGroups v%d: %+v", descV, d)
		}

		listV := min(v, maxOf[16])
		lr := kmsg.NewPtrListGroupsRequest()
		lr.Version = listV
		found := false
		for _, g := range rc.do(lr, 10*time.Second).(*kmsg.ListGroupsResponse).Groups {
			found = found || g.Group == group
		}
		if !found {
			t.Fatalf("ListGroups v%d does not list %s", listV, group)
		}

		leaveV := min(v, maxOf[13])
		lg := kmsg.NewPtrLeaveGroupRequest()
		lg.Version, lg.Group, lg.MemberID = leaveV, group, member
		lg.Members = []kmsg.LeaveGroupRequestMember{{MemberID: member}}
		lgr := rc.do(lg, 10*time.Second).(*kmsg.LeaveGroupResponse)
		wantCode(t, fmt.Sprintf("LeaveGroup v%d", leaveV), lgr.ErrorCode, nil)
		if leaveV >= 3 {
			wantCode(t, fmt.Sprintf("LeaveGroup v%d member", leaveV), lgr.Members[0].ErrorCode, nil)
		}

		if v == 0 {
			od := kmsg.NewPtrOffsetDeleteRequest()
			od.Group = group
			od.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "vt", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 1}}}}
			odr := rc.do(od, 10*time.Second).(*kmsg.OffsetDeleteResponse)
			wantCode(t, "OffsetDelete v0", odr.ErrorCode, nil)
			wantCode(t, "OffsetDelete v0 partition", odr.Topics[0].Partitions[0].ErrorCode, nil)
		}
		delV := min(v, maxOf[42])
		dg := kmsg.NewPtrDeleteGroupsRequest()
		dg.Version, dg.Groups = delV, []string{group}
		wantCode(t, fmt.Sprintf("DeleteGroups v%d", delV), rc.do(dg, 10*time.Second).(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode, nil)
	}
}

// TestEtcdOutage: with etcd down, group requests are answered with errors clients retry
// (REQUEST_TIMED_OUT for commits, COORDINATOR_NOT_AVAILABLE where Kafka answers it) within
// the etcd request timeout, never hang; a loaded group's heartbeats keep working; everything
// works again once etcd is back.
func TestEtcdOutage(t *testing.T) {
	c := newCluster(t)
	b := c.startBroker(1, 0)
	c.createTopic(b, "ot", 1)
	rc := dialRaw(t, b.addr())

	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"ot"}
	join := func(group, member string) *kmsg.JoinGroupResponse {
		r := kmsg.NewPtrJoinGroupRequest()
		r.Version, r.Group, r.MemberID, r.ProtocolType = 3, group, member, "consumer"
		r.SessionTimeoutMillis, r.RebalanceTimeoutMillis = 30000, 30000
		r.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: meta.AppendTo(nil)}}
		return rc.do(r, 30*time.Second).(*kmsg.JoinGroupResponse)
	}
	commit := func(group, member string, gen int32) int16 {
		r := kmsg.NewPtrOffsetCommitRequest()
		r.Version, r.Group, r.Generation, r.MemberID = 8, group, gen, member
		r.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "ot", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 5, LeaderEpoch: -1}}}}
		return rc.do(r, 30*time.Second).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
	}
	jr := join("og", "")
	wantCode(t, "join", jr.ErrorCode, nil)
	sr := kmsg.NewPtrSyncGroupRequest()
	sr.Version, sr.Group, sr.Generation, sr.MemberID = 3, "og", jr.Generation, jr.MemberID
	sr.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: jr.MemberID, MemberAssignment: []byte("a")}}
	wantCode(t, "sync", rc.do(sr, 30*time.Second).(*kmsg.SyncGroupResponse).ErrorCode, nil)

	c.etcd.Stop()
	start := time.Now()
	wantCode(t, "commit during the outage", commit("og", jr.MemberID, jr.Generation), kerr.RequestTimedOut)
	wantCode(t, "join of a new group during the outage", join("og-new", "").ErrorCode, kerr.CoordinatorNotAvailable)
	of := kmsg.NewPtrOffsetFetchRequest()
	of.Version, of.Group = 7, "og"
	wantCode(t, "fetch during the outage", rc.do(of, 30*time.Second).(*kmsg.OffsetFetchResponse).ErrorCode, kerr.CoordinatorNotAvailable)
	lr := kmsg.NewPtrListGroupsRequest()
	lr.Version = 4
	wantCode(t, "list during the outage", rc.do(lr, 30*time.Second).(*kmsg.ListGroupsResponse).ErrorCode, kerr.CoordinatorNotAvailable)
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version, hb.Group, hb.Generation, hb.MemberID = 4, "og", jr.Generation, jr.MemberID
	wantCode(t, "heartbeat during the outage", rc.do(hb, 30*time.Second).(*kmsg.HeartbeatResponse).ErrorCode, nil)
	t.Logf("five group requests answered in %v with etcd down (etcd request timeout 2 s)", time.Since(start).Round(time.Millisecond))

	c.etcd.Start()
	testenv.Eventually(t, 60*time.Second, func() error {
		if code := commit("og", jr.MemberID, jr.Generation); code != 0 {
			return kerr.ErrorForCode(code)
		}
		return nil
	})
	if got := c.committed(b, "og")["ot"][0]; got != 5 {
		t.Fatalf("committed %d after the outage", got)
	}
}
