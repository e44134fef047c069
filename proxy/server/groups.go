package server

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The requests of one group go to its coordinator, unchanged: JoinGroup (v0-v9), SyncGroup
// (v0-v5), Heartbeat (v0-v4), LeaveGroup (v0-v5), OffsetCommit (v0-v9; v10 names topics by
// id) and OffsetDelete (v0). The coordinator is the one a broker named in a FindCoordinator
// answer (the client's, seen by the proxy, or the proxy's own); when it answers
// NOT_COORDINATOR, or cannot be reached, the proxy forgets it, refreshes its routes and the
// client gets NOT_COORDINATOR, finds the coordinator again and retries. JoinGroup and
// SyncGroup, which a coordinator answers only once the group's rebalance settles, each take a
// broker connection of their own; their deadline is the rebalance timeout plus
// KAFSCALE_PROXY_BROKER_REQUEST_TIMEOUT_MS.

const (
	offsetCommitKey = 8
	joinGroupKey    = 11
	heartbeatKey    = 12
	leaveGroupKey   = 13
	syncGroupKey    = 14
	offsetDeleteKey = 47
)

// syncGroupWait bounds a SyncGroup's wait for the group leader's assignment (the request
// carries no timeout of its own; Kafka's default rebalance timeout is 5 minutes).
const syncGroupWait = 5 * time.Minute

func init() {
	register(joinGroupKey, 0, 9, groupHandler(func(m kmsg.Request) (string, time.Duration, bool) {
		r := m.(*kmsg.JoinGroupRequest)
		return r.Group, millis(max(r.RebalanceTimeoutMillis, r.SessionTimeoutMillis)), true
	}, func(resp kmsg.Response) int16 { return resp.(*kmsg.JoinGroupResponse).ErrorCode },
		func(m kmsg.Request, code int16) kmsg.Response {
			resp := m.ResponseKind().(*kmsg.JoinGroupResponse)
			resp.ErrorCode, resp.Generation, resp.MemberID = code, -1, m.(*kmsg.JoinGroupRequest).MemberID
			return resp
		}))
	register(syncGroupKey, 0, 5, groupHandler(func(m kmsg.Request) (string, time.Duration, bool) {
		return m.(*kmsg.SyncGroupRequest).Group, syncGroupWait, true
	}, func(resp kmsg.Response) int16 { return resp.(*kmsg.SyncGroupResponse).ErrorCode },
		func(m kmsg.Request, code int16) kmsg.Response {
			resp := m.ResponseKind().(*kmsg.SyncGroupResponse)
			resp.ErrorCode = code
			return resp
		}))
	register(heartbeatKey, 0, 4, groupHandler(func(m kmsg.Request) (string, time.Duration, bool) {
		return m.(*kmsg.HeartbeatRequest).Group, 0, false
	}, func(resp kmsg.Response) int16 { return resp.(*kmsg.HeartbeatResponse).ErrorCode },
		func(m kmsg.Request, code int16) kmsg.Response {
			resp := m.ResponseKind().(*kmsg.HeartbeatResponse)
			resp.ErrorCode = code
			return resp
		}))
	register(leaveGroupKey, 0, 5, groupHandler(func(m kmsg.Request) (string, time.Duration, bool) {
		return m.(*kmsg.LeaveGroupRequest).Group, 0, false
	}, func(resp kmsg.Response) int16 { return resp.(*kmsg.LeaveGroupResponse).ErrorCode },
		func(m kmsg.Request, code int16) kmsg.Response {
			resp := m.ResponseKind().(*kmsg.LeaveGroupResponse)
			resp.ErrorCode = code
			return resp
		}))
	register(offsetCommitKey, 0, 9, groupHandler(func(m kmsg.Request) (string, time.Duration, bool) {
		return m.(*kmsg.OffsetCommitRequest).Group, 0, false
	}, func(resp kmsg.Response) int16 {
		for _, t := range resp.(*kmsg.OffsetCommitResponse).Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					return p.ErrorCode
				}
			}
		}
		return 0
	}, func(m kmsg.Request, code int16) kmsg.Response {
		req := m.(*kmsg.OffsetCommitRequest)
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, t := range req.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}))
	register(offsetDeleteKey, 0, 0, groupHandler(func(m kmsg.Request) (string, time.Duration, bool) {
		return m.(*kmsg.OffsetDeleteRequest).Group, 0, false
	}, func(resp kmsg.Response) int16 { return resp.(*kmsg.OffsetDeleteResponse).ErrorCode },
		func(m kmsg.Request, code int16) kmsg.Response {
			resp := m.ResponseKind().(*kmsg.OffsetDeleteResponse)
			resp.ErrorCode = code
			return resp
		}))
}

// groupHandler forwards a one-group request to the coordinator. target names the group, the
// request's own timeout and whether it waits on the broker (a connection of its own);
// errorOf reads the answer's group error; failure builds the answer carrying code.
func groupHandler(target func(kmsg.Request) (string, time.Duration, bool), errorOf func(kmsg.Response) int16,
	failure func(kmsg.Request, int16) kmsg.Response) handler {
	return func(c *conn, r *request) (*response, error) {
		group, own, waits := target(r.msg)
		resp, code := c.groupCall(r, group, own, waits)
		if code != 0 {
			return &response{msg: failure(r.msg, code)}, nil
		}
		c.noteGroupError(group, errorOf(resp))
		return &response{msg: resp}, nil
	}
}
