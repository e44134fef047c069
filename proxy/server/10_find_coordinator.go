package server

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator: v0-v5, forwarded to any broker and rewritten.
//
// The broker decides the coordinator; the proxy replaces its address with the advertised
// endpoint and remembers the node, so the group's requests go straight to it. v4+ batches
// keys (answered per key in Coordinators). Without a reachable broker the answer is
// COORDINATOR_NOT_AVAILABLE (retriable).

const findCoordinatorKey = 10

func init() { register(findCoordinatorKey, 0, 5, handleFindCoordinator) }

func handleFindCoordinator(c *conn, r *request) (*response, error) {
	req := r.msg.(*kmsg.FindCoordinatorRequest)
	msg, err := c.forwardAnyMsg(r, 0, true)
	host, port := c.s.advertised()
	if err != nil {
		resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
		code := c.retriable(r, kerr.CoordinatorNotAvailable)
		resp.ErrorCode, resp.NodeID, resp.Port = code, -1, -1
		for _, k := range req.CoordinatorKeys {
			co := kmsg.NewFindCoordinatorResponseCoordinator()
			co.Key, co.NodeID, co.Port, co.ErrorCode = k, -1, -1, code
			resp.Coordinators = append(resp.Coordinators, co)
		}
		return &response{msg: resp}, nil
	}
	resp := msg.(*kmsg.FindCoordinatorResponse)
	if req.Version >= 4 {
		for i := range resp.Coordinators {
			co := &resp.Coordinators[i]
			if co.ErrorCode == 0 && co.NodeID >= 0 {
				if req.CoordinatorType == 0 {
					c.s.coords.set(co.Key, co.NodeID)
				}
				co.Host, co.Port = host, port
			}
		}
		return &response{msg: resp}, nil
	}
	if resp.ErrorCode == 0 && resp.NodeID >= 0 {
		if req.CoordinatorType == 0 {
			c.s.coords.set(req.CoordinatorKey, resp.NodeID)
		}
		resp.Host, resp.Port = host, port
	}
	return &response{msg: resp}, nil
}
