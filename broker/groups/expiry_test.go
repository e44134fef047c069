package groups

import (
	"context"
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
