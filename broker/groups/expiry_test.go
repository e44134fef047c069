package groups

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// storedKeys lists the etcd keys of a group: its document and its offsets.
func storedKeys(h *harness, group string) []string {
	h.kv.mu.Lock()
	defer h.kv.mu.Unlock()
	var out []string
	for k := range h.kv.data {
		if strings.HasSuffix(k, "/groups/"+group) || strings.Contains(k, "/offsets/"+group+"/") {
			out = append(out, k)
		}
	}
	return out
}

// An empty group that committed nothing for the retention is deleted with its offsets;
// one still committing (without members, as clients assigning partitions themselves do) and
// one with live members are kept, whatever their age, and a group that empties expires a
// retention after its last member left.
func TestEmptyGroupsExpireAfterRetention(t *testing.T) {
	h := newHarness(t)
	c := h.coordinator(1, func(o *Options) {
		o.OffsetsRetention = time.Hour
		o.OffsetsRetentionCheckInterval = 10 * time.Minute
	})
	commit := func(group string, member string, gen int32, offset int64) {
		t.Helper()
		codes := commitCodes(c.OffsetCommit(context.Background(), commitReq(8, group, member, gen, map[string]map[int32]int64{"t1": {0: offset}})))
		mustCode(t, "commit "+group, codes["t1"][0], nil)
	}
	commit("gone", "", -1, 5)
	commit("still", "", -1, 7)
	a, b, gen := stableGroup(t, h, c, "live")
	commit("live", a, gen, 11)
	beat := func(d time.Duration) { // advance d, the live members heartbeating every 5 s
		for range int(d / (5 * time.Second)) {
			h.clock.Advance(5 * time.Second)
			mustCode(t, "heartbeat a", heartbeat(c, "live", a, gen), nil)
			mustCode(t, "heartbeat b", heartbeat(c, "live", b, gen), nil)
		}
	}
	beat(50 * time.Minute)
	commit("still", "", -1, 8)
	beat(20 * time.Minute) // "gone" is 70 minutes old, "still" 20, "live" has members

	if keys := storedKeys(h, "gone"); len(keys) != 0 {
		t.Fatalf("expired group still stored: %v", keys)
	}
	if n := c.Stats().Expired; n != 1 {
		t.Fatalf("%d groups counted as expired, want 1", n)
	}
	if d := describe(c, "gone"); d.State != "Dead" {
		t.Fatalf("expired group describes as %s, want Dead", d.State)
	}
	if got := fetched(t, c, "gone"); len(got["t1"]) != 0 {
		t.Fatalf("expired group still has offsets: %v", got)
	}
	if got := fetched(t, c, "still"); got["t1"][0] != 8 {
		t.Fatalf("a group committing within the retention lost its offset: %v", got)
	}
	if got := fetched(t, c, "live"); got["t1"][0] != 11 {
		t.Fatalf("a group with members lost its offset after 70 minutes: %v", got)
	}

	// "live" empties now: it stays a retention from now, though its offset is older.
	r := kmsg.NewPtrLeaveGroupRequest()
	r.Version, r.Group = 3, "live"
	r.Members = []kmsg.LeaveGroupRequestMember{{MemberID: a}, {MemberID: b}}
	mustCode(t, "leave", c.LeaveGroup(context.Background(), r).ErrorCode, nil)
	h.clock.Advance(50 * time.Minute)
	if got := fetched(t, c, "live"); got["t1"][0] != 11 {
		t.Fatalf("a group empty for 50 minutes lost its offset: %v", got)
	}
	if got := fetched(t, c, "still"); len(got["t1"]) != 0 {
		t.Fatalf("\"still\", 70 minutes without a commit, kept its offset: %v", got)
	}
	h.clock.Advance(20 * time.Minute)
	if keys := storedKeys(h, "live"); len(keys) != 0 {
		t.Fatalf("group empty for 70 minutes still stored: %v", keys)
	}
	if st := c.Stats(); st.Expired != 3 || st.Loaded != 0 {
		t.Fatalf("stats %+v, want 3 expired and none loaded", st)
	}
}

// A group whose stored document still names members (its coordinator stopped with them) is
// loaded by the sweep, its members' sessions run out, and it expires a retention later.
func TestStaleStoredMembersAreExpiredToo(t *testing.T) {
	h := newHarness(t)
	c1 := h.coordinator(1, func(o *Options) { o.OffsetsRetention = time.Hour })
	a, _, gen := stableGroup(t, h, c1, "orphan")
	mustCode(t, "commit", commitCodes(c1.OffsetCommit(context.Background(), commitReq(8, "orphan", a, gen, map[string]map[int32]int64{"t1": {0: 3}})))["t1"][0], nil)
	c1.Close() // the document stays Stable with two members
	if doc := storedGroup(t, h, "orphan"); doc.State != "Stable" {
		t.Fatalf("stored %s, want Stable", doc.State)
	}
	h.coordinator(1, func(o *Options) {
		o.OffsetsRetention = time.Hour
		o.OffsetsRetentionCheckInterval = 10 * time.Minute
	})
	h.clock.Advance(70 * time.Minute) // loaded at 60 minutes, members gone a session later
	if doc := storedGroup(t, h, "orphan"); doc.State != "Empty" {
		t.Fatalf("stored %s after its members' sessions, want Empty", doc.State)
	}
	h.clock.Advance(time.Hour)
	if keys := storedKeys(h, "orphan"); len(keys) != 0 {
		t.Fatalf("orphaned group still stored: %v", keys)
	}
}

// soloGroup makes a one-member stable group whose member joins with protocolType and
// metadata; it returns the member and the generation.
func soloGroup(t *testing.T, c *Coordinator, group, protocolType string, metadata []byte) (string, int32) {
	t.Helper()
	r := joinReq(3, group, "") // v3: no MEMBER_ID_REQUIRED round
	r.ProtocolType = protocolType
	r.Protocols[0].Metadata = metadata
	j := <-join(c, r)
	mustCode(t, "join "+group, j.ErrorCode, nil)
	s := syncReq(group, j.MemberID, j.Generation, map[string]string{j.MemberID: "all"})
	s.ProtocolType = kmsg.StringPtr(protocolType)
	mustCode(t, "sync "+group, c.SyncGroup(context.Background(), s).ErrorCode, nil)
	return j.MemberID, j.Generation
}

// A stable consumer group keeps the offsets of the topics its members subscribe to, however
// old; those of a topic it no longer subscribes to go once committed a retention ago, and a
// newer commit restarts their clock. Groups whose subscription is unknown (not the consumer
// protocol, or metadata that does not parse) keep every offset.
func TestUnsubscribedOffsetsExpireInStableGroups(t *testing.T) {
	h := newHarness(t)
	c := h.coordinator(1, func(o *Options) {
		o.OffsetsRetention = time.Hour
		o.OffsetsRetentionCheckInterval = 10 * time.Minute
	})
	type member struct {
		group, id string
		gen       int32
	}
	var members []member
	a, b, gen := stableGroup(t, h, c, "live") // both subscribe to t1
	members = append(members, member{"live", a, gen}, member{"live", b, gen})
	id, g := soloGroup(t, c, "connect", "connect", []byte("not consumer metadata"))
	members = append(members, member{"connect", id, g})
	id, g = soloGroup(t, c, "garbled", "consumer", []byte{0, 9, 0xff})
	members = append(members, member{"garbled", id, g})
	commit := func(m member, offsets map[string]map[int32]int64) {
		t.Helper()
		for topic, codes := range commitCodes(c.OffsetCommit(context.Background(), commitReq(8, m.group, m.id, m.gen, offsets))) {
			for p, code := range codes {
				mustCode(t, fmt.Sprintf("commit %s %s/%d", m.group, topic, p), code, nil)
			}
		}
	}
	beat := func(d time.Duration) { // advance d, every member heartbeating every 5 s
		for range int(d / (5 * time.Second)) {
			h.clock.Advance(5 * time.Second)
			for _, m := range members {
				mustCode(t, "heartbeat "+m.group, heartbeat(c, m.group, m.id, m.gen), nil)
			}
		}
	}
	commit(members[0], map[string]map[int32]int64{"t1": {0: 11, 1: 12}, "t2": {0: 4}, "big": {7: 70}})
	commit(members[2], map[string]map[int32]int64{"t2": {0: 5}})
	commit(members[3], map[string]map[int32]int64{"t2": {0: 6}})
	beat(40 * time.Minute)
	commit(members[1], map[string]map[int32]int64{"big": {7: 71}}) // "big" restarts its clock
	beat(30 * time.Minute)                                         // t1 and t2 are 70 minutes old

	got := fetched(t, c, "live")
	if got["t1"][0] != 11 || got["t1"][1] != 12 {
		t.Fatalf("offsets of the subscribed topic t1 lost after 70 minutes: %v", got)
	}
	if _, ok := got["t2"][0]; ok {
		t.Fatalf("offset of t2 (not subscribed), committed 70 minutes ago, kept: %v", got)
	}
	if got["big"][7] != 71 {
		t.Fatalf("offset of \"big\" committed 30 minutes ago lost: %v", got)
	}
	for _, group := range []string{"connect", "garbled"} {
		if got := fetched(t, c, group); len(got["t2"]) != 1 {
			t.Fatalf("%s, whose subscription is unknown, lost its offset: %v", group, got)
		}
	}
	if st := c.Stats(); st.OffsetsExpired != 1 || st.Expired != 0 {
		t.Fatalf("stats %+v, want 1 offset and no group expired", st)
	}
	beat(40 * time.Minute) // "big" is 70 minutes old
	if got := fetched(t, c, "live"); len(got["big"]) != 0 || got["t1"][0] != 11 {
		t.Fatalf("after 110 minutes: %v, want t1 only", got)
	}
	if n := c.Stats().OffsetsExpired; n != 2 {
		t.Fatalf("%d offsets counted as expired, want 2", n)
	}
	for _, k := range storedKeys(h, "live") {
		if strings.Contains(k, "/big/") || strings.Contains(k, "/t2/") {
			t.Fatalf("expired offset still in etcd: %s", k)
		}
	}
}
