package groups

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafscale/kafscale/internal/metadata"
)

func mustCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	var wantCode int16
	if want != nil {
		wantCode = want.Code
	}
	if got != wantCode {
		t.Fatalf("%s: error %v (%d), want %v", what, kerr.ErrorForCode(got), got, want)
	}
}

// stableGroup brings two members to a stable generation and returns their ids (leader
// first) and the generation.
func stableGroup(t *testing.T, h *harness, c *Coordinator, group string) (leader, follower string, gen int32) {
	t.Helper()
	a, aJoin := joinNew(t, c, group)
	ja := <-aJoin // alone: the join completes at once
	mustCode(t, "join a", ja.ErrorCode, nil)
	if ja.LeaderID != a || ja.Generation != 1 || len(ja.Members) != 1 {
		t.Fatalf("first generation: leader %q gen %d members %d", ja.LeaderID, ja.Generation, len(ja.Members))
	}
	sa := c.SyncGroup(context.Background(), syncReq(group, a, 1, map[string]string{a: "all"}))
	mustCode(t, "sync a", sa.ErrorCode, nil)
	if string(sa.MemberAssignment) != "all" {
		t.Fatalf("assignment %q", sa.MemberAssignment)
	}
	mustCode(t, "heartbeat stable", heartbeat(c, group, a, 1), nil)

	b, bJoin := joinNew(t, c, group)
	waitFor(t, "rebalance started", func() bool { s, _, _, _ := groupState(c, group); return s == PreparingRebalance })
	mustCode(t, "heartbeat during rebalance", heartbeat(c, group, a, 1), kerr.RebalanceInProgress)
	aRejoin := join(c, joinReq(5, group, a))
	ja, jb := <-aRejoin, <-bJoin
	mustCode(t, "rejoin a", ja.ErrorCode, nil)
	mustCode(t, "join b", jb.ErrorCode, nil)
	if ja.Generation != 2 || jb.Generation != 2 || ja.LeaderID != a || jb.LeaderID != a {
		t.Fatalf("second generation: a gen %d leader %q, b gen %d leader %q", ja.Generation, ja.LeaderID, jb.Generation, jb.LeaderID)
	}
	if len(ja.Members) != 2 || len(jb.Members) != 0 {
		t.Fatalf("members: leader sees %d, follower %d", len(ja.Members), len(jb.Members))
	}
	if *ja.Protocol != "range" || *ja.ProtocolType != "consumer" {
		t.Fatalf("protocol %q type %q", *ja.Protocol, *ja.ProtocolType)
	}
	bSync := syncAsync(c, syncReq(group, b, 2, nil))
	waitFor(t, "follower waits for the leader", func() bool { _, _, _, s := groupState(c, group); return s == 1 })
	mustCode(t, "heartbeat while completing", heartbeat(c, group, b, 2), nil)
	sa = c.SyncGroup(context.Background(), syncReq(group, a, 2, map[string]string{a: "p0", b: "p1"}))
	sb := <-bSync
	mustCode(t, "sync a", sa.ErrorCode, nil)
	mustCode(t, "sync b", sb.ErrorCode, nil)
	if string(sa.MemberAssignment) != "p0" || string(sb.MemberAssignment) != "p1" {
		t.Fatalf("assignments %q %q", sa.MemberAssignment, sb.MemberAssignment)
	}
	return a, b, 2
}

func storedGroup(t *testing.T, h *harness, group string) GroupDocument {
	t.Helper()
	v, ok := h.kv.value(h.keys.Group(group))
	if !ok {
		t.Fatalf("group %s not stored", group)
	}
	var doc GroupDocument
	if err := json.Unmarshal([]byte(v), &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestJoinSyncRebalanceAndPersist(t *testing.T) {
	h := newHarness(t)
	c := h.coordinator(1, nil)
	a, b, gen := stableGroup(t, h, c, "g")
	if s, g, _, _ := groupState(c, "g"); s != Stable || g != gen {
		t.Fatalf("state %v gen %d", s, g)
	}
	doc := storedGroup(t, h, "g")
	if doc.State != "Stable" || doc.Generation != 2 || doc.Leader != a || len(doc.Members) != 2 ||
		string(doc.Members[0].Assignment) != "p0" || string(doc.Members[1].Assignment) != "p1" || doc.Members[1].MemberID != b {
		t.Fatalf("stored %+v", doc)
	}
	// a follower rejoining a stable group with the same protocols gets the generation back
	jr := <-join(c, joinReq(5, "g", b))
	mustCode(t, "rejoin unchanged", jr.ErrorCode, nil)
	if jr.Generation != gen {
		t.Fatalf("rejoin generation %d", jr.Generation)
	}
	mustCode(t, "stale generation", heartbeat(c, "g", a, 1), kerr.IllegalGeneration)
	mustCode(t, "unknown member", heartbeat(c, "g", "nobody", gen), kerr.UnknownMemberID)
	mustCode(t, "unknown group", heartbeat(c, "other", a, gen), kerr.UnknownMemberID)
	mustCode(t, "sync stale", c.SyncGroup(context.Background(), syncReq("g", a, 1, nil)).ErrorCode, kerr.IllegalGeneration)
}

func TestSessionExpiryRebalances(t *testing.T) {
	h := newHarness(t)
	c := h.coordinator(1, nil)
	a, _, gen := stableGroup(t, h, c, "g")
	// a keeps heartbeating, b goes silent past its 10 s session timeout
	for range 4 {
		h.clock.Advance(3 * time.Second)
		if code := heartbeat(c, "g", a, gen); code == kerr.RebalanceInProgress.Code {
			break
		}
	}
	if s, _, _, _ := groupState(c, "g"); s != PreparingRebalance {
		t.Fatalf("state %v after the session timeout, want PreparingRebalance", s)
	}
	jr := <-join(c, joinReq(5, "g", a))
	mustCode(t, "rejoin", jr.ErrorCode, nil)
	if jr.Generation != gen+1 || len(jr.Members) != 1 {
		t.Fatalf("generation %d with %d members", jr.Generation, len(jr.Members))
	}
}

func TestRebalanceTimeoutDropsMembersThatDoNotRejoin(t *testing.T) {
	h := newHarness(t)
	c := h.coordinator(1, nil)
	a, b, gen := stableGroup(t, h, c, "g")
	_ = a
	// b rejoins with new protocol metadata, which starts a rebalance; a never rejoins
	req := joinReq(5, "g", b)
	req.Protocols[0].Metadata = consumerMeta("t1", "t2")
	bJoin := join(c, req)
	waitFor(t, "b waits", func() bool { s, _, j, _ := groupState(c, "g"); return s == PreparingRebalance && j == 1 })
	h.clock.Advance(30 * time.Second) // the rebalance timeout
	jb := <-bJoin
	mustCode(t, "join b", jb.ErrorCode, nil)
	if jb.Generation != gen+1 || jb.LeaderID != b || len(jb.Members) != 1 {
		t.Fatalf("generation %d leader %q members %d", jb.Generation, jb.LeaderID, len(jb.Members))
	}
	mustCode(t, "dropped member", heartbeat(c, "g", a, gen), kerr.UnknownMemberID)
}

func TestLeaveGroupBatchEmptiesGroup(t *testing.T) {
	h := newHarness(t)
	c := h.coordinator(1, nil)
	a, b, gen := stableGroup(t, h, c, "g")
	r := kmsg.NewPtrLeaveGroupRequest()
	r.Version, r.Group = 5, "g"
	for _, id := range []string{a, b, "ghost"} {
		m := kmsg.NewLeaveGroupRequestMember()
		m.MemberID = id
		r.Members = append(r.Members, m)
	}
	resp := c.LeaveGroup(context.Background(), r)
	mustCode(t, "leave", resp.ErrorCode, nil)
	if len(resp.Members) != 3 || resp.Members[0].ErrorCode != 0 || resp.Members[1].ErrorCode != 0 || resp.Members[2].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave members %+v", resp.Members)
	}
	if s, g, _, _ := groupState(c, "g"); s != Empty || g != gen+1 {
		t.Fatalf("state %v gen %d", s, g)
	}
	if doc := storedGroup(t, h, "g"); doc.State != "Empty" || doc.Generation != gen+1 || len(doc.Members) != 0 {
		t.Fatalf("stored %+v", doc)
	}
	// v0 leave of an unknown member: top-level error
	r0 := kmsg.NewPtrLeaveGroupRequest()
	r0.Version, r0.Group, r0.MemberID = 0, "g", a
	mustCode(t, "leave v0", c.LeaveGroup(context.Background(), r0).ErrorCode, kerr.UnknownMemberID)
}

func TestLeaderLeavingDuringSyncRebalances(t *testing.T) {
	h := newHarness(t)
	c := h.coordinator(1, nil)
	a, b, gen := stableGroup(t, h, c, "g")
	// a new member makes everyone rejoin; both do; b syncs, a (leader) leaves instead
	cID, cJoin := joinNew(t, c, "g")
	waitFor(t, "c waits", func() bool { s, _, j, _ := groupState(c, "g"); return s == PreparingRebalance && j == 1 })
	aj, bj := join(c, joinReq(5, "g", a)), join(c, joinReq(5, "g", b))
	for _, ch := range []<-chan *kmsg.JoinGroupResponse{aj, bj, cJoin} {
		mustCode(t, "join", (<-ch).ErrorCode, nil)
	}
	bSync := syncAsync(c, syncReq("g", b, gen+1, nil))
	waitFor(t, "b syncing", func() bool { _, _, _, s := groupState(c, "g"); return s == 1 })
	r := kmsg.NewPtrLeaveGroupRequest()
	r.Version, r.Group, r.MemberID = 2, "g", a
	mustCode(t, "leave", c.LeaveGroup(context.Background(), r).ErrorCode, nil)
	mustCode(t, "sync b after leader left", (<-bSync).ErrorCode, kerr.RebalanceInProgress)
	bj, cj := join(c, joinReq(5, "g", b)), join(c, joinReq(5, "g", cID))
	jb, jc := <-bj, <-cj
	if jb.Generation != gen+2 || jb.LeaderID != b || jc.LeaderID != b {
		t.Fatalf("after the leader left: gen %d leader %q/%q", jb.Generation, jb.LeaderID, jc.LeaderID)
	}
}

func TestInitialRebalanceDelayGathersMembers(t *testing.T) {
	h := newHarness(t)
	c := h.coordinator(1, func(o *Options) { o.InitialRebalanceDelay = 3 * time.Second })
	_, aJoin := joinNew(t, c, "g")
	waitFor(t, "a waits", func() bool { _, _, j, _ := groupState(c, "g"); return j == 1 })
	h.clock.Advance(2 * time.Second)
	_, bJoin := joinNew(t, c, "g")
	waitFor(t, "b waits", func() bool { _, _, j, _ := groupState(c, "g"); return j == 2 })
	h.clock.Advance(time.Second) // first delay over, but b arrived: one more delay
	if s, _, j, _ := groupState(c, "g"); s != PreparingRebalance || j != 2 {
		t.Fatalf("state %v with %d joining, want still gathering", s, j)
	}
	h.clock.Advance(3 * time.Second)
	ja, jb := <-aJoin, <-bJoin
	if ja.Generation != 1 || jb.Generation != 1 || len(ja.Members)+len(jb.Members) != 2 {
		t.Fatalf("generations %d %d", ja.Generation, jb.Generation)
	}
}

func TestJoinValidation(t *testing.T) {
	h := newHarness(t)
	c := h.coordinator(1, nil)
	short := joinReq(5, "g", "")
	short.SessionTimeoutMillis = 100
	mustCode(t, "session too short", c.JoinGroup(context.Background(), "x", "/h", short).ErrorCode, kerr.InvalidSessionTimeout)
	mustCode(t, "empty group", c.JoinGroup(context.Background(), "x", "/h", joinReq(5, "", "")).ErrorCode, kerr.InvalidGroupID)
	mustCode(t, "unknown member", c.JoinGroup(context.Background(), "x", "/h", joinReq(5, "g", "nope")).ErrorCode, kerr.UnknownMemberID)
	// v3 joins without MEMBER_ID_REQUIRED
	j3 := <-join(c, joinReq(3, "g", "", "range", "roundrobin"))
	mustCode(t, "join v3", j3.ErrorCode, nil)
	if j3.MemberID == "" || j3.Generation != 1 {
		t.Fatalf("v3 join: member %q gen %d", j3.MemberID, j3.Generation)
	}
	mustCode(t, "no common protocol", c.JoinGroup(context.Background(), "x", "/h", joinReq(3, "g", "", "sticky")).ErrorCode, kerr.InconsistentGroupProtocol)
	other := joinReq(3, "g", "", "roundrobin")
	other.ProtocolType = "connect"
	mustCode(t, "other protocol type", c.JoinGroup(context.Background(), "x", "/h", other).ErrorCode, kerr.InconsistentGroupProtocol)
}

func TestProtocolSelectionByVotes(t *testing.T) {
	h := newHarness(t)
	c := h.coordinator(1, func(o *Options) { o.InitialRebalanceDelay = time.Second })
	ch1 := join(c, joinReq(3, "g", "", "range", "roundrobin"))
	ch2 := join(c, joinReq(3, "g", "", "roundrobin", "range"))
	ch3 := join(c, joinReq(3, "g", "", "roundrobin", "sticky", "range"))
	waitFor(t, "three waiting", func() bool { _, _, j, _ := groupState(c, "g"); return j == 3 })
	h.clock.Advance(time.Minute)
	for _, ch := range []<-chan *kmsg.JoinGroupResponse{ch1, ch2, ch3} {
		if r := <-ch; *r.Protocol != "roundrobin" {
			t.Fatalf("protocol %q, want roundrobin (2 votes of 3)", *r.Protocol)
		}
	}
}

func TestOffsetCommitAndFetch(t *testing.T) {
	h := newHarness(t)
	c := h.coordinator(1, nil)

	// groupless consumers commit with generation -1
	resp := c.OffsetCommit(context.Background(), commitReq(8, "simple", "", -1, map[string]map[int32]int64{"t1": {0: 5, 1: 7}, "nope": {0: 1}}))
	codes := commitCodes(resp)
	if codes["t1"][0] != 0 || codes["t1"][1] != 0 || codes["nope"][0] != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("codes %v", codes)
	}
	if got := fetched(t, c, "simple"); got["t1"][0] != 5 || got["t1"][1] != 7 || len(got) != 1 {
		t.Fatalf("fetched %v", got)
	}
	if doc := storedGroup(t, h, "simple"); doc.State != "Empty" {
		t.Fatalf("a first commit stores the group: %+v", doc)
	}
	v0 := c.OffsetCommit(context.Background(), commitReq(0, "simple", "", 0, map[string]map[int32]int64{"t2": {0: 9}}))
	mustCode(t, "v0 commit", commitCodes(v0)["t2"][0], nil)

	// members commit with their generation
	a, b, gen := stableGroup(t, h, c, "g")
	mustCode(t, "member commit", commitCodes(c.OffsetCommit(context.Background(), commitReq(8, "g", a, gen, map[string]map[int32]int64{"t1": {0: 42}})))["t1"][0], nil)
	mustCode(t, "stale generation", commitCodes(c.OffsetCommit(context.Background(), commitReq(8, "g", a, gen-1, map[string]map[int32]int64{"t1": {0: 1}})))["t1"][0], kerr.IllegalGeneration)
	mustCode(t, "unknown member", commitCodes(c.OffsetCommit(context.Background(), commitReq(8, "g", "x", gen, map[string]map[int32]int64{"t1": {0: 1}})))["t1"][0], kerr.UnknownMemberID)
	mustCode(t, "simple commit to a live group", commitCodes(c.OffsetCommit(context.Background(), commitReq(8, "g", "", -1, map[string]map[int32]int64{"t1": {0: 1}})))["t1"][0], kerr.UnknownMemberID)
	big := commitReq(8, "g", a, gen, map[string]map[int32]int64{"t1": {1: 1}})
	big.Topics[0].Partitions[0].Metadata = kmsg.StringPtr(string(make([]byte, 5000)))
	mustCode(t, "metadata too large", commitCodes(c.OffsetCommit(context.Background(), big))["t1"][1], kerr.OffsetMetadataTooLarge)

	// v1 fetch of named partitions, with -1 for the uncommitted one
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version, r.Group = 1, "g"
	ft := kmsg.NewOffsetFetchRequestTopic()
	ft.Topic, ft.Partitions = "t1", []int32{0, 1}
	r.Topics = append(r.Topics, ft)
	f1 := c.OffsetFetch(context.Background(), r)
	if p := f1.Topics[0].Partitions; p[0].Offset != 42 || p[1].Offset != -1 || p[0].ErrorCode != 0 {
		t.Fatalf("v1 fetch %+v", p)
	}
	// v8: several groups at once, with leader epochs
	r8 := kmsg.NewPtrOffsetFetchRequest()
	r8.Version = 8
	for _, id := range []string{"g", "simple", "none"} {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = id
		r8.Groups = append(r8.Groups, rg)
	}
	f8 := c.OffsetFetch(context.Background(), r8)
	if len(f8.Groups) != 3 || f8.Groups[0].Topics[0].Partitions[0].Offset != 42 || f8.Groups[0].Topics[0].Partitions[0].LeaderEpoch != 3 ||
		len(f8.Groups[1].Topics) != 2 || len(f8.Groups[2].Topics) != 0 {
		t.Fatalf("v8 fetch %+v", f8.Groups)
	}

	// a commit while the group waits for its assignment is refused
	_, newJoin := joinNew(t, c, "g")
	waitFor(t, "rebalance", func() bool { s, _, _, _ := groupState(c, "g"); return s == PreparingRebalance })
	aj, bj := join(c, joinReq(5, "g", a)), join(c, joinReq(5, "g", b))
	<-aj
	<-bj
	<-newJoin
	mustCode(t, "commit while completing", commitCodes(c.OffsetCommit(context.Background(), commitReq(8, "g", a, gen+1, map[string]map[int32]int64{"t1": {0: 1}})))["t1"][0], kerr.RebalanceInProgress)
}

func TestRestartRecoversGroupAndOffsets(t *testing.T) {
	h := newHarness(t)
	c1 := h.coordinator(1, nil)
	a, b, gen := stableGroup(t, h, c1, "g")
	mustCode(t, "commit", commitCodes(c1.OffsetCommit(context.Background(), commitReq(8, "g", a, gen, map[string]map[int32]int64{"t1": {0: 11, 1: 12}})))["t1"][0], nil)
	c1.Close()

	c2 := h.coordinator(1, nil) // the restarted broker
	if got := fetched(t, c2, "g"); got["t1"][0] != 11 || got["t1"][1] != 12 {
		t.Fatalf("offsets after restart %v", got)
	}
	mustCode(t, "heartbeat after restart", heartbeat(c2, "g", a, gen), nil)
	sb := c2.SyncGroup(context.Background(), syncReq("g", b, gen, nil))
	mustCode(t, "sync after restart", sb.ErrorCode, nil)
	if string(sb.MemberAssignment) != "p1" {
		t.Fatalf("assignment after restart %q", sb.MemberAssignment)
	}
	mustCode(t, "commit after restart", commitCodes(c2.OffsetCommit(context.Background(), commitReq(8, "g", b, gen, map[string]map[int32]int64{"t2": {0: 3}})))["t2"][0], nil)
	d := describe(c2, "g")
	if d.State != "Stable" || len(d.Members) != 2 || d.Protocol != "range" {
		t.Fatalf("describe after restart %+v", d)
	}
	// members that never come back expire and the group empties
	h.clock.Advance(time.Minute)
	if d := describe(c2, "g"); d.State != "Empty" {
		t.Fatalf("state %s after every session expired", d.State)
	}
}

func describe(c *Coordinator, id string) kmsg.DescribeGroupsResponseGroup {
	r := kmsg.NewPtrDescribeGroupsRequest()
	r.Version, r.Groups = 5, []string{id}
	return c.DescribeGroups(context.Background(), r).Groups[0]
}

func TestNotCoordinatorAndMove(t *testing.T) {
	h := newHarness(t)
	h.setBrokers(1, 2)
	// find a group each broker coordinates
	var mine, theirs string
	for i := 0; mine == "" || theirs == ""; i++ {
		id := "group-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		if CoordinatorFor(h.snapshot(), id) == 1 {
			mine = id
		} else {
			theirs = id
		}
	}
	c1, c2 := h.coordinator(1, nil), h.coordinator(2, nil)
	mustCode(t, "join elsewhere", c1.JoinGroup(context.Background(), "x", "/h", joinReq(5, theirs, "")).ErrorCode, kerr.NotCoordinator)
	mustCode(t, "commit elsewhere", commitCodes(c1.OffsetCommit(context.Background(), commitReq(8, theirs, "", -1, map[string]map[int32]int64{"t1": {0: 1}})))["t1"][0], kerr.NotCoordinator)
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version, r.Group = 7, theirs
	mustCode(t, "fetch elsewhere", c1.OffsetFetch(context.Background(), r).ErrorCode, kerr.NotCoordinator)
	mustCode(t, "describe elsewhere", describe(c1, theirs).ErrorCode, kerr.NotCoordinator)

	// broker 1 runs the group, then broker 2 leaves... and the group moves between them
	a, _, gen := stableGroup(t, h, c1, mine)
	mustCode(t, "commit", commitCodes(c1.OffsetCommit(context.Background(), commitReq(8, mine, a, gen, map[string]map[int32]int64{"t1": {0: 100}})))["t1"][0], nil)
	h.setBrokers(2) // broker 1 is gone from the metadata: broker 2 coordinates everything
	c1.Apply(h.snapshot())
	mustCode(t, "heartbeat at the old coordinator", heartbeat(c1, mine, a, gen), kerr.NotCoordinator)
	mustCode(t, "heartbeat at the new coordinator", heartbeat(c2, mine, a, gen), nil)
	if got := fetched(t, c2, mine); got["t1"][0] != 100 {
		t.Fatalf("offsets at the new coordinator %v", got)
	}
	mustCode(t, "commit at the new coordinator", commitCodes(c2.OffsetCommit(context.Background(), commitReq(8, mine, a, gen, map[string]map[int32]int64{"t1": {0: 101}})))["t1"][0], nil)
}

func TestFencedWriteAnswersNotCoordinator(t *testing.T) {
	h := newHarness(t)
	c1 := h.coordinator(1, nil)
	a, b, gen := stableGroup(t, h, c1, "g")
	// another broker (which believed it coordinates "g") rewrote the document meanwhile
	c2 := h.coordinator(1, nil)
	mustCode(t, "other commit", commitCodes(c2.OffsetCommit(context.Background(), commitReq(8, "g", a, gen, map[string]map[int32]int64{"t1": {0: 1}})))["t1"][0], nil)
	r := kmsg.NewPtrLeaveGroupRequest()
	r.Version, r.Group = 3, "g"
	r.Members = []kmsg.LeaveGroupRequestMember{{MemberID: a}, {MemberID: b}}
	mustCode(t, "leave at c2", c2.LeaveGroup(context.Background(), r).ErrorCode, nil) // stores the group, now empty
	mustCode(t, "stale commit", commitCodes(c1.OffsetCommit(context.Background(), commitReq(8, "g", a, gen, map[string]map[int32]int64{"t1": {0: 999}})))["t1"][0], kerr.NotCoordinator)
	if got := fetched(t, c2, "g"); got["t1"][0] != 1 {
		t.Fatalf("the fenced commit was written: %v", got)
	}
}

func TestEtcdOutage(t *testing.T) {
	h := newHarness(t)
	c := h.coordinator(1, nil)
	a, b, gen := stableGroup(t, h, c, "g")
	h.kv.setFail(true)
	mustCode(t, "join of an unloaded group", c.JoinGroup(context.Background(), "x", "/h", joinReq(5, "other", "")).ErrorCode, kerr.CoordinatorNotAvailable)
	mustCode(t, "commit", commitCodes(c.OffsetCommit(context.Background(), commitReq(8, "g", a, gen, map[string]map[int32]int64{"t1": {0: 1}})))["t1"][0], kerr.RequestTimedOut)
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version, r.Group = 7, "g"
	mustCode(t, "fetch", c.OffsetFetch(context.Background(), r).ErrorCode, kerr.CoordinatorNotAvailable)
	mustCode(t, "list", c.ListGroups(context.Background(), kmsg.NewPtrListGroupsRequest()).ErrorCode, kerr.CoordinatorNotAvailable)
	mustCode(t, "heartbeat (memory only)", heartbeat(c, "g", a, gen), nil)

	// a rebalance whose assignment cannot be stored fails the sync and rebalances again
	aj := join(c, joinReq(5, "g", a, "range", "roundrobin"))
	waitFor(t, "a's new protocols start a rebalance", func() bool { s, _, _, _ := groupState(c, "g"); return s == PreparingRebalance })
	bj := join(c, joinReq(5, "g", b))
	<-aj
	<-bj
	bSync := syncAsync(c, syncReq("g", b, gen+1, nil))
	waitFor(t, "b syncing", func() bool { _, _, _, s := groupState(c, "g"); return s == 1 })
	mustCode(t, "leader sync", c.SyncGroup(context.Background(), syncReq("g", a, gen+1, map[string]string{a: "x", b: "y"})).ErrorCode, kerr.CoordinatorNotAvailable)
	mustCode(t, "follower sync", (<-bSync).ErrorCode, kerr.CoordinatorNotAvailable)
	if s, _, _, _ := groupState(c, "g"); s != PreparingRebalance {
		t.Fatalf("state %v after a failed store", s)
	}
	h.kv.setFail(false)
	aj, bj = join(c, joinReq(5, "g", a, "range", "roundrobin")), join(c, joinReq(5, "g", b))
	ja, jb := <-aj, <-bj
	bSync = syncAsync(c, syncReq("g", b, ja.Generation, nil))
	mustCode(t, "leader sync after recovery", c.SyncGroup(context.Background(), syncReq("g", a, jb.Generation, map[string]string{a: "x", b: "y"})).ErrorCode, nil)
	if sb := <-bSync; sb.ErrorCode != 0 || string(sb.MemberAssignment) != "y" {
		t.Fatalf("follower after recovery: %d %q", sb.ErrorCode, sb.MemberAssignment)
	}
}

func TestListDescribeDeleteGroups(t *testing.T) {
	h := newHarness(t)
	c := h.coordinator(1, nil)
	a, b, _ := stableGroup(t, h, c, "live")
	_, _ = a, b
	for _, id := range []string{"idle", "idle/nested"} {
		mustCode(t, "commit "+id, commitCodes(c.OffsetCommit(context.Background(), commitReq(8, id, "", -1, map[string]map[int32]int64{"t1": {0: 1}})))["t1"][0], nil)
	}
	lr := kmsg.NewPtrListGroupsRequest()
	lr.Version = 4
	l := c.ListGroups(context.Background(), lr)
	got := map[string]string{}
	for _, g := range l.Groups {
		got[g.Group] = g.GroupState
	}
	if len(got) != 3 || got["live"] != "Stable" || got["idle"] != "Empty" || got["idle/nested"] != "Empty" {
		t.Fatalf("listed %v", got)
	}
	lr.StatesFilter = []string{"stable"}
	if l := c.ListGroups(context.Background(), lr); len(l.Groups) != 1 || l.Groups[0].Group != "live" || l.Groups[0].ProtocolType != "consumer" {
		t.Fatalf("filtered %+v", l.Groups)
	}
	if d := describe(c, "unknown"); d.State != "Dead" || d.ErrorCode != 0 {
		t.Fatalf("unknown group %+v", d)
	}
	d := describe(c, "live")
	if d.State != "Stable" || len(d.Members) != 2 || string(d.Members[1].MemberAssignment) != "p1" || d.Members[0].ClientHost != "/127.0.0.1" {
		t.Fatalf("describe %+v", d)
	}

	dr := kmsg.NewPtrDeleteGroupsRequest()
	dr.Version, dr.Groups = 2, []string{"live", "idle", "never"}
	del := c.DeleteGroups(context.Background(), dr)
	mustCode(t, "delete live", del.Groups[0].ErrorCode, kerr.NonEmptyGroup)
	mustCode(t, "delete idle", del.Groups[1].ErrorCode, nil)
	mustCode(t, "delete never", del.Groups[2].ErrorCode, kerr.GroupIDNotFound)
	if _, ok := h.kv.value(h.keys.Group("idle")); ok {
		t.Fatal("deleted group still stored")
	}
	if _, ok := h.kv.value(h.keys.Offset("idle", "t1", 0)); ok {
		t.Fatal("deleted group's offset still stored")
	}
	if got := fetched(t, c, "idle/nested"); got["t1"][0] != 1 {
		t.Fatalf("a group whose id extends the deleted one lost its offsets: %v", got)
	}
}

func TestOffsetDelete(t *testing.T) {
	h := newHarness(t)
	c := h.coordinator(1, nil)
	a, _, gen := stableGroup(t, h, c, "g") // subscribed to t1
	mustCode(t, "commit", commitCodes(c.OffsetCommit(context.Background(), commitReq(8, "g", a, gen, map[string]map[int32]int64{"t1": {0: 5}, "t2": {0: 6}})))["t2"][0], nil)
	r := kmsg.NewPtrOffsetDeleteRequest()
	r.Group = "g"
	for _, name := range []string{"t1", "t2"} {
		rt := kmsg.NewOffsetDeleteRequestTopic()
		rt.Topic = name
		rt.Partitions = []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}
		r.Topics = append(r.Topics, rt)
	}
	resp := c.OffsetDelete(context.Background(), r)
	mustCode(t, "top level", resp.ErrorCode, nil)
	mustCode(t, "subscribed topic", resp.Topics[0].Partitions[0].ErrorCode, kerr.GroupSubscribedToTopic)
	mustCode(t, "other topic", resp.Topics[1].Partitions[0].ErrorCode, nil)
	if got := fetched(t, c, "g"); got["t1"][0] != 5 || len(got) != 1 {
		t.Fatalf("after delete %v", got)
	}
	r.Group = "missing"
	mustCode(t, "unknown group", c.OffsetDelete(context.Background(), r).ErrorCode, kerr.GroupIDNotFound)
}

func TestCoordinatorForIsDeterministicAndSpreads(t *testing.T) {
	snap := &metadata.Snapshot{Brokers: []metadata.Broker{{NodeID: 1}, {NodeID: 2}, {NodeID: 3}}}
	counts := map[int32]int{}
	for i := range 300 {
		id := "group-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		n := CoordinatorFor(snap, id)
		if n != CoordinatorFor(snap, id) {
			t.Fatal("not deterministic")
		}
		counts[n]++
	}
	if len(counts) != 3 {
		t.Fatalf("spread %v", counts)
	}
	if CoordinatorFor(&metadata.Snapshot{}, "g") != -1 {
		t.Fatal("no brokers must mean no coordinator")
	}
}
