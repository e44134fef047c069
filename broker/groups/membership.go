package groups

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup answers a JoinGroup request (v0-v9). It blocks until the rebalance the member
// joins completes, the member is answered otherwise, or ctx ends.
//
// v4+ members that join without a member id get one back with MEMBER_ID_REQUIRED and must
// join again with it (KIP-394). group.instance.id (v5+) is recorded and shown, but members
// are treated as dynamic: static membership is not implemented.
func (c *Coordinator) JoinGroup(ctx context.Context, clientID, clientHost string, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.Generation = -1
	resp.MemberID = req.MemberID
	fail := func(err *kerr.Error) *kmsg.JoinGroupResponse {
		resp.ErrorCode = err.Code
		return resp
	}
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	rebalance := session
	if req.Version >= 1 {
		rebalance = time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	}
	protocols := make([]protocol, len(req.Protocols))
	for i, p := range req.Protocols {
		protocols[i] = protocol{Name: p.Name, Metadata: p.Metadata}
	}
	switch {
	case req.Group == "":
		return fail(kerr.InvalidGroupID)
	case session < c.opts.MinSessionTimeout || session > c.opts.MaxSessionTimeout:
		return fail(kerr.InvalidSessionTimeout)
	case req.ProtocolType == "" || len(protocols) == 0:
		return fail(kerr.InconsistentGroupProtocol)
	}

	g, err := c.lockGroup(ctx, req.Group, true)
	if err != nil {
		return fail(c.errorFor("JoinGroup", req.Group, err, kerr.CoordinatorNotAvailable))
	}
	if !g.compatible(req.MemberID, req.ProtocolType, protocols) {
		g.mu.Unlock()
		return fail(kerr.InconsistentGroupProtocol)
	}

	var m *member
	switch _, pending := g.pending[req.MemberID]; {
	case req.MemberID == "":
		id := newMemberID(clientID)
		if req.Version >= 4 {
			g.addPending(id, session)
			g.mu.Unlock()
			resp.MemberID = id
			return fail(kerr.MemberIDRequired)
		}
		m = g.addMember(id)
	case pending:
		g.pending[req.MemberID].Stop()
		delete(g.pending, req.MemberID)
		m = g.addMember(req.MemberID)
	default:
		m = g.members[req.MemberID]
		if m == nil || g.state == Empty {
			g.mu.Unlock()
			return fail(kerr.UnknownMemberID)
		}
	}
	changed := m.protocols == nil || !sameProtocols(m.protocols, protocols)
	m.instanceID, m.clientID, m.clientHost = req.InstanceID, clientID, clientHost
	m.sessionTimeout, m.rebalanceTimeout, m.protocols = session, rebalance, protocols
	if len(g.members) == 1 {
		g.protocolType = req.ProtocolType
	}

	// A known member rejoining a group that does not need a rebalance for it gets the
	// current generation back at once.
	if !changed && (g.state == CompletingRebalance || (g.state == Stable && m.id != g.leader)) {
		res := g.joinResultFor(m)
		g.scheduleHeartbeat(m)
		g.mu.Unlock()
		return c.joinResponse(resp, res, g)
	}

	if m.joinWait != nil { // a retried join replaces the one still waiting
		m.joinWait <- joinResult{err: kerr.RebalanceInProgress, memberID: m.id, generation: -1}
	}
	wait := make(chan joinResult, 1)
	m.joinWait = wait
	g.stopHeartbeat(m)
	if g.initialPhase {
		g.joinedInPhase = true
	}
	switch g.state {
	case PreparingRebalance:
		g.maybeCompleteJoin()
	default:
		g.prepareRebalance("member " + m.id + " joined")
	}
	g.mu.Unlock()

	select {
	case res := <-wait:
		return c.joinResponse(resp, res, g)
	case <-ctx.Done():
		g.mu.Lock()
		if m.joinWait == wait {
			m.joinWait = nil
		}
		g.mu.Unlock()
		return fail(kerr.RebalanceInProgress)
	}
}

// addMember adds a member that then waits in JoinGroup.
func (g *group) addMember(id string) *member {
	m := &member{id: id, seq: g.nextSeq}
	g.nextSeq++
	g.members[id] = m
	return m
}

func (c *Coordinator) joinResponse(resp *kmsg.JoinGroupResponse, res joinResult, g *group) *kmsg.JoinGroupResponse {
	if res.err != nil {
		resp.ErrorCode = res.err.Code
		resp.MemberID = res.memberID
		return resp
	}
	resp.Generation = res.generation
	resp.Protocol = kmsg.StringPtr(res.protocol)
	g.mu.Lock()
	resp.ProtocolType = kmsg.StringPtr(g.protocolType)
	g.mu.Unlock()
	resp.LeaderID = res.leader
	resp.MemberID = res.memberID
	for _, jm := range res.members {
		rm := kmsg.NewJoinGroupResponseMember()
		rm.MemberID, rm.InstanceID, rm.ProtocolMetadata = jm.id, jm.instanceID, jm.metadata
		resp.Members = append(resp.Members, rm)
	}
	return resp
}

// SyncGroup answers a SyncGroup request (v0-v5). The leader's request carries the
// assignment; it is stored in etcd before anyone is answered. Followers wait for it.
func (c *Coordinator) SyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	fail := func(err *kerr.Error) *kmsg.SyncGroupResponse {
		resp.ErrorCode = err.Code
		return resp
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID)
	}
	g, err := c.lockGroup(ctx, req.Group, false)
	if err != nil {
		return fail(c.errorFor("SyncGroup", req.Group, err, kerr.CoordinatorNotAvailable))
	}
	if g == nil {
		return fail(kerr.UnknownMemberID)
	}
	m := g.members[req.MemberID]
	switch {
	case m == nil:
		g.mu.Unlock()
		return fail(kerr.UnknownMemberID)
	case req.Generation != g.generation:
		g.mu.Unlock()
		return fail(kerr.IllegalGeneration)
	case req.ProtocolType != nil && *req.ProtocolType != g.protocolType,
		req.Protocol != nil && *req.Protocol != g.protocol:
		g.mu.Unlock()
		return fail(kerr.InconsistentGroupProtocol)
	}
	resp.ProtocolType, resp.Protocol = kmsg.StringPtr(g.protocolType), kmsg.StringPtr(g.protocol)

	switch g.state {
	case PreparingRebalance:
		g.mu.Unlock()
		return fail(kerr.RebalanceInProgress)
	case Stable:
		resp.MemberAssignment = m.assignment
		g.scheduleHeartbeat(m)
		g.mu.Unlock()
		return resp
	case CompletingRebalance:
	default:
		g.mu.Unlock()
		return fail(kerr.UnknownMemberID)
	}

	if m.syncWait != nil {
		m.syncWait <- syncResult{err: kerr.RebalanceInProgress}
	}
	wait := make(chan syncResult, 1)
	m.syncWait = wait
	g.scheduleHeartbeat(m)
	if m.id == g.leader {
		c.completeSync(ctx, g, req.GroupAssignment)
	}
	g.mu.Unlock()

	select {
	case res := <-wait:
		if res.err != nil {
			return fail(res.err)
		}
		resp.MemberAssignment = res.assignment
		return resp
	case <-ctx.Done():
		g.mu.Lock()
		if m.syncWait == wait {
			m.syncWait = nil
		}
		g.mu.Unlock()
		return fail(kerr.RebalanceInProgress)
	}
}

// completeSync stores the leader's assignment and makes the group stable, answering every
// waiting member; when etcd refuses, every waiting member gets COORDINATOR_NOT_AVAILABLE
// (NOT_COORDINATOR when fenced) and the group rebalances.
func (c *Coordinator) completeSync(ctx context.Context, g *group, assignments []kmsg.SyncGroupRequestGroupAssignment) {
	for _, m := range g.members {
		m.assignment = nil
	}
	for _, a := range assignments {
		if m := g.members[a.MemberID]; m != nil {
			m.assignment = a.MemberAssignment
		}
	}
	sctx, cancel := c.etcdCtx(ctx)
	err := c.storeGroup(sctx, g)
	cancel()
	if err != nil {
		kerrv := c.errorFor("SyncGroup", g.id, err, kerr.CoordinatorNotAvailable)
		for _, m := range g.members {
			m.assignment = nil
			if m.syncWait != nil {
				m.syncWait <- syncResult{err: kerrv}
				m.syncWait = nil
			}
		}
		if err == errFenced {
			c.drop(g)
			return
		}
		g.prepareRebalance("storing the assignment failed")
		return
	}
	g.state = Stable
	c.log.Debug("group stable", "group", g.id, "generation", g.generation, "members", len(g.members))
	for _, m := range g.members {
		if m.syncWait != nil {
			m.syncWait <- syncResult{assignment: m.assignment}
			m.syncWait = nil
		}
	}
}

// Heartbeat answers a Heartbeat request (v0-v4): REBALANCE_IN_PROGRESS tells the member to
// rejoin.
func (c *Coordinator) Heartbeat(ctx context.Context, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	if err := c.heartbeat(ctx, req); err != nil {
		resp.ErrorCode = err.Code
	}
	return resp
}

func (c *Coordinator) heartbeat(ctx context.Context, req *kmsg.HeartbeatRequest) *kerr.Error {
	if req.Group == "" {
		return kerr.InvalidGroupID
	}
	g, err := c.lockGroup(ctx, req.Group, false)
	if err != nil {
		return c.errorFor("Heartbeat", req.Group, err, kerr.CoordinatorNotAvailable)
	}
	if g == nil {
		return kerr.UnknownMemberID
	}
	defer g.mu.Unlock()
	m := g.members[req.MemberID]
	switch {
	case m == nil || g.state == Empty:
		return kerr.UnknownMemberID
	case req.Generation != g.generation:
		return kerr.IllegalGeneration
	}
	g.scheduleHeartbeat(m)
	if g.state == PreparingRebalance {
		return kerr.RebalanceInProgress
	}
	return nil
}

// LeaveGroup answers a LeaveGroup request: one member in v0-v2, a batch in v3+ (members
// named by member id, or by group.instance.id with an empty member id).
func (c *Coordinator) LeaveGroup(ctx context.Context, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	g, err := c.lockGroup(ctx, req.Group, false)
	if err != nil {
		resp.ErrorCode = c.errorFor("LeaveGroup", req.Group, err, kerr.CoordinatorNotAvailable).Code
		return resp
	}
	if g == nil {
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return resp
	}
	defer g.mu.Unlock()
	for _, l := range leaving {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = l.MemberID, l.InstanceID
		m := g.members[l.MemberID]
		if m == nil && l.MemberID == "" && l.InstanceID != nil {
			for _, o := range g.members {
				if o.instanceID != nil && *o.instanceID == *l.InstanceID {
					m = o
					rm.MemberID = o.id
				}
			}
		}
		switch {
		case m != nil:
			c.log.Debug("group member left", "group", g.id, "member", m.id)
			g.removeMember(m, kerr.UnknownMemberID)
		case g.pending[l.MemberID] != nil:
			g.pending[l.MemberID].Stop()
			delete(g.pending, l.MemberID)
			if g.state == PreparingRebalance {
				g.maybeCompleteJoin()
			}
		default:
			rm.ErrorCode = kerr.UnknownMemberID.Code
			if req.Version < 3 {
				resp.ErrorCode = kerr.UnknownMemberID.Code
			}
		}
		resp.Members = append(resp.Members, rm)
	}
	if req.Version < 3 {
		resp.Members = nil
	}
	return resp
}
