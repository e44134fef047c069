package groups

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// State is a group's place in the classic rebalance protocol.
type State int

const (
	// Empty: no members; the group may still have committed offsets.
	Empty State = iota
	// PreparingRebalance: waiting for the members to (re)join.
	PreparingRebalance
	// CompletingRebalance: joined; waiting for the leader's assignment in SyncGroup.
	CompletingRebalance
	// Stable: every member has its assignment and heartbeats.
	Stable
	// Dead: the group does not exist (deleted, or never created).
	Dead
)

// String is the state's Kafka name, as DescribeGroups and ListGroups report it.
func (s State) String() string {
	switch s {
	case Empty:
		return "Empty"
	case PreparingRebalance:
		return "PreparingRebalance"
	case CompletingRebalance:
		return "CompletingRebalance"
	case Stable:
		return "Stable"
	default:
		return "Dead"
	}
}

// protocol is one assignment protocol a member supports, with its metadata.
type protocol struct {
	Name     string `json:"name"`
	Metadata []byte `json:"metadata"`
}

// member is one member of a group.
type member struct {
	id               string
	instanceID       *string
	clientID         string
	clientHost       string
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocols        []protocol
	assignment       []byte
	seq              int64 // join order: the first member that joins leads

	joinWait chan joinResult // set while its JoinGroup waits for the rebalance
	syncWait chan syncResult // set while its SyncGroup waits for the leader's assignment

	heartbeat    Timer
	heartbeatSeq uint64 // invalidates callbacks of replaced timers
}

// metadataFor returns the member's metadata for the named protocol.
func (m *member) metadataFor(name string) []byte {
	for _, p := range m.protocols {
		if p.Name == name {
			return p.Metadata
		}
	}
	return nil
}

func (m *member) supports(name string) bool {
	for _, p := range m.protocols {
		if p.Name == name {
			return true
		}
	}
	return false
}

func sameProtocols(a, b []protocol) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || !bytes.Equal(a[i].Metadata, b[i].Metadata) {
			return false
		}
	}
	return true
}

// joinResult is what a waiting JoinGroup is answered.
type joinResult struct {
	err        *kerr.Error
	generation int32
	protocol   string
	leader     string
	memberID   string
	members    []joinMember // only for the leader
}

type joinMember struct {
	id         string
	instanceID *string
	metadata   []byte
}

// syncResult is what a waiting SyncGroup is answered.
type syncResult struct {
	err        *kerr.Error
	assignment []byte
}

// group is one consumer group this broker coordinates. Every field is guarded by mu.
type group struct {
	c  *Coordinator
	id string

	mu           sync.Mutex
	gone         bool // unloaded or deleted: requests look the group up again
	state        State
	protocolType string
	protocol     string
	generation   int32
	leader       string
	members      map[string]*member
	pending      map[string]Timer // member ids handed out with MEMBER_ID_REQUIRED, not joined yet
	nextSeq      int64

	rebalance      Timer
	rebalanceSeq   uint64
	initialPhase   bool      // the delayed first rebalance of an empty group
	initialStart   time.Time // when the initial phase began
	joinedInPhase  bool      // a member joined since the initial-phase timer was set
	rev            int64     // etcd mod revision of groups/<id> as last read or written; 0 = absent
	persistedEmpty bool      // the stored document already says Empty at this generation
}

func (c *Coordinator) newGroup(id string) *group {
	return &group{c: c, id: id, state: Empty, members: map[string]*member{}, pending: map[string]Timer{}}
}

// sortedMembers returns the members in join order.
func (g *group) sortedMembers() []*member {
	out := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}

// unload answers every waiter NOT_COORDINATOR and stops every timer; the group is dropped
// from this broker's memory (its etcd state stays).
func (g *group) unload() {
	if g.gone {
		return
	}
	g.gone = true
	g.stopRebalanceTimer()
	for id, t := range g.pending {
		t.Stop()
		delete(g.pending, id)
	}
	for _, m := range g.members {
		g.stopHeartbeat(m)
		g.answerWaiters(m, kerr.NotCoordinator)
	}
}

// answerWaiters ends a member's waiting JoinGroup and SyncGroup with err.
func (g *group) answerWaiters(m *member, err *kerr.Error) {
	if m.joinWait != nil {
		m.joinWait <- joinResult{err: err, memberID: m.id, generation: -1}
		m.joinWait = nil
	}
	if m.syncWait != nil {
		m.syncWait <- syncResult{err: err}
		m.syncWait = nil
	}
}

// --- heartbeats --------------------------------------------------------------------------

// scheduleHeartbeat (re)starts the member's session timeout.
func (g *group) scheduleHeartbeat(m *member) {
	g.stopHeartbeat(m)
	seq := m.heartbeatSeq
	m.heartbeat = g.c.opts.Clock.AfterFunc(m.sessionTimeout, func() { g.expire(m, seq) })
}

func (g *group) stopHeartbeat(m *member) {
	m.heartbeatSeq++
	if m.heartbeat != nil {
		m.heartbeat.Stop()
		m.heartbeat = nil
	}
}

// expire removes a member whose session timed out, unless it is waiting in JoinGroup or
// SyncGroup (then the rebalance's own timeout decides).
func (g *group) expire(m *member, seq uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gone || m.heartbeatSeq != seq || g.members[m.id] != m {
		return
	}
	if m.joinWait != nil || m.syncWait != nil {
		g.scheduleHeartbeat(m)
		return
	}
	g.c.log.Info("group member session expired", "group", g.id, "member", m.id, "generation", g.generation)
	g.removeMember(m, kerr.UnknownMemberID)
}

// startLoadedMembers gives the members of a group just loaded from etcd a full session
// timeout to find this coordinator.
func (g *group) startLoadedMembers() {
	for _, m := range g.members {
		if m.heartbeat == nil {
			g.scheduleHeartbeat(m)
		}
	}
}

// --- membership --------------------------------------------------------------------------

// newMemberID is the client id and a random UUID, as Kafka makes them.
func newMemberID(clientID string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%x-%x-%x-%x-%x", clientID, b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// addPending records a member id handed out with MEMBER_ID_REQUIRED; it is forgotten when
// the member does not come back within its session timeout.
func (g *group) addPending(id string, sessionTimeout time.Duration) {
	g.pending[id] = g.c.opts.Clock.AfterFunc(sessionTimeout, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.gone {
			return
		}
		if _, ok := g.pending[id]; ok {
			delete(g.pending, id)
			if g.state == PreparingRebalance {
				g.maybeCompleteJoin()
			}
		}
	})
}

// removeMember drops a member (left, expired) and moves the group on: a rebalance when it
// was stable or completing one; a check whether the others have all joined otherwise.
func (g *group) removeMember(m *member, waiterErr *kerr.Error) {
	g.stopHeartbeat(m)
	g.answerWaiters(m, waiterErr)
	delete(g.members, m.id)
	switch g.state {
	case Stable, CompletingRebalance:
		g.prepareRebalance("member " + m.id + " left")
	case PreparingRebalance:
		g.maybeCompleteJoin()
	}
}

// --- rebalance ---------------------------------------------------------------------------

func (g *group) stopRebalanceTimer() {
	g.rebalanceSeq++
	if g.rebalance != nil {
		g.rebalance.Stop()
		g.rebalance = nil
	}
}

func (g *group) setRebalanceTimer(d time.Duration, f func()) {
	g.stopRebalanceTimer()
	seq := g.rebalanceSeq
	g.rebalance = g.c.opts.Clock.AfterFunc(d, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.gone || g.rebalanceSeq != seq {
			return
		}
		g.rebalance = nil
		f()
	})
}

// maxRebalanceTimeout is how long a rebalance waits for the members to rejoin.
func (g *group) maxRebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// prepareRebalance starts a rebalance: members must rejoin; waiting syncs are told so.
func (g *group) prepareRebalance(reason string) {
	if g.state == CompletingRebalance {
		for _, m := range g.members {
			m.assignment = nil
			if m.syncWait != nil {
				m.syncWait <- syncResult{err: kerr.RebalanceInProgress}
				m.syncWait = nil
			}
		}
	}
	g.c.log.Debug("group rebalancing", "group", g.id, "from", g.state.String(), "generation", g.generation, "reason", reason)
	wasEmpty := g.state == Empty
	g.state = PreparingRebalance
	delay := g.c.opts.InitialRebalanceDelay
	if wasEmpty && delay > 0 {
		g.initialPhase = true
		g.initialStart = g.c.opts.Clock.Now()
		g.joinedInPhase = false
		g.setRebalanceTimer(min(delay, g.maxRebalanceTimeout()), g.initialDelayDone)
		return
	}
	g.initialPhase = false
	g.setRebalanceTimer(g.maxRebalanceTimeout(), g.completeJoin)
	g.maybeCompleteJoin()
}

// initialDelayDone ends one step of the initial delay: another step while members keep
// arriving and the rebalance timeout allows it, else the join completes.
func (g *group) initialDelayDone() {
	remaining := g.maxRebalanceTimeout() - g.c.opts.Clock.Now().Sub(g.initialStart)
	if g.joinedInPhase && remaining > 0 {
		g.joinedInPhase = false
		g.setRebalanceTimer(min(g.c.opts.InitialRebalanceDelay, remaining), g.initialDelayDone)
		return
	}
	g.initialPhase = false
	g.completeJoin()
}

// maybeCompleteJoin completes the join phase once every member has rejoined and no member
// id handed out is still expected.
func (g *group) maybeCompleteJoin() {
	if g.state != PreparingRebalance || g.initialPhase || len(g.pending) > 0 {
		return
	}
	for _, m := range g.members {
		if m.joinWait == nil {
			return
		}
	}
	g.completeJoin()
}

// completeJoin ends the join phase: members that did not rejoin are dropped, the next
// generation starts, a protocol and a leader are chosen and every joined member answered.
func (g *group) completeJoin() {
	if g.state != PreparingRebalance {
		return
	}
	g.stopRebalanceTimer()
	g.initialPhase = false
	for _, m := range g.members {
		if m.joinWait == nil {
			g.stopHeartbeat(m)
			g.answerWaiters(m, kerr.UnknownMemberID)
			delete(g.members, m.id)
		}
	}
	g.generation++
	if len(g.members) == 0 {
		g.state, g.protocol, g.leader = Empty, "", ""
		g.c.log.Debug("group empty", "group", g.id, "generation", g.generation)
		g.persistEmpty()
		return
	}
	g.protocol = g.selectProtocol()
	members := g.sortedMembers()
	if _, ok := g.members[g.leader]; !ok {
		g.leader = members[0].id
	}
	g.state = CompletingRebalance
	g.c.log.Debug("group joined", "group", g.id, "generation", g.generation, "protocol", g.protocol, "leader", g.leader, "members", len(members))
	for _, m := range members {
		res := g.joinResultFor(m)
		m.joinWait <- res
		m.joinWait = nil
		g.scheduleHeartbeat(m)
	}
}

// joinResultFor is the JoinGroup answer of a member of the current generation.
func (g *group) joinResultFor(m *member) joinResult {
	res := joinResult{generation: g.generation, protocol: g.protocol, leader: g.leader, memberID: m.id}
	if m.id == g.leader {
		for _, o := range g.sortedMembers() {
			res.members = append(res.members, joinMember{id: o.id, instanceID: o.instanceID, metadata: o.metadataFor(g.protocol)})
		}
	}
	return res
}

// selectProtocol picks the protocol every member supports that most members prefer; ties
// go to the leader's (or first member's) preference.
func (g *group) selectProtocol() string {
	members := g.sortedMembers()
	first := members[0]
	if m, ok := g.members[g.leader]; ok {
		first = m
	}
	votes := map[string]int{}
	for _, m := range members {
		for _, p := range m.protocols {
			if g.allSupport(p.Name, "") {
				votes[p.Name]++
				break
			}
		}
	}
	best, bestVotes := "", -1
	for _, p := range first.protocols {
		if v, ok := votes[p.Name]; ok && v > bestVotes {
			best, bestVotes = p.Name, v
		}
	}
	return best
}

// allSupport says whether every member but except supports the protocol.
func (g *group) allSupport(name, except string) bool {
	for _, m := range g.members {
		if m.id != except && !m.supports(name) {
			return false
		}
	}
	return true
}

// compatible says whether a member with these protocols may (re)join: the group's protocol
// type, and at least one protocol every other member supports.
func (g *group) compatible(memberID, protocolType string, protocols []protocol) bool {
	if protocolType == "" || len(protocols) == 0 {
		return false
	}
	others := 0
	for id := range g.members {
		if id != memberID {
			others++
		}
	}
	if others == 0 {
		return true
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protocols {
		if g.allSupport(p.Name, memberID) {
			return true
		}
	}
	return false
}

// --- persistence hooks -------------------------------------------------------------------

// persistEmpty stores the group as Empty after its last member left; a failure is logged:
// the stored members then expire again after the next load.
func (g *group) persistEmpty() {
	ctx, cancel := g.c.etcdCtx(context.Background())
	defer cancel()
	if err := g.c.storeGroup(ctx, g); err != nil {
		g.c.log.Warn("store empty group", "group", g.id, "err", err)
		if err == errFenced {
			g.c.drop(g)
		}
	}
}
