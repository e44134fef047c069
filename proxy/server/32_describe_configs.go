package server

import (
	"strconv"

	"github.com/kafscale/kafscale/proxy/route"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeConfigs: v0-v4. Topic resources can be described by any broker; a BROKER resource
// names its broker (by node id), which alone knows its settings, so the request is split:
// each named broker gets its own resources, the topic resources go to any broker, and the
// answers are merged in the request's order. A resource whose broker is not live or cannot be
// reached is answered with an error of its own.

const describeConfigsKey = 32

func init() { register(describeConfigsKey, 0, 4, handleDescribeConfigs) }

func handleDescribeConfigs(c *conn, r *request) (*response, error) {
	req := r.msg.(*kmsg.DescribeConfigsRequest)
	st := c.state()
	var anyB *route.Broker
	if cands := c.candidates(r.key, r.version); len(cands) > 0 {
		anyB = &cands[0]
	}
	target := make([]int32, len(req.Resources)) // node id per resource, -1: none
	var order []route.Broker
	seen := map[int32]bool{}
	for i, res := range req.Resources {
		target[i] = -1
		var b route.Broker
		ok := false
		if res.ResourceType == kmsg.ConfigResourceTypeBroker || res.ResourceType == kmsg.ConfigResourceTypeBrokerLogger {
			if id, err := strconv.ParseInt(res.ResourceName, 10, 32); err == nil {
				b, ok = st.Broker(int32(id))
			} else if res.ResourceName == "" && anyB != nil {
				b, ok = *anyB, true // the default broker configs
			}
		} else if anyB != nil {
			b, ok = *anyB, true
		}
		if !ok {
			continue
		}
		target[i] = b.NodeID
		if !seen[b.NodeID] {
			seen[b.NodeID] = true
			order = append(order, b)
		}
	}
	ctx, cancel := c.callContext(0)
	defer cancel()
	answers := make([]*kmsg.DescribeConfigsResponse, len(order))
	parallel(order, func(i int, b route.Broker) {
		sub := *req
		sub.Resources = nil
		for j, res := range req.Resources {
			if target[j] == b.NodeID {
				sub.Resources = append(sub.Resources, res)
			}
		}
		a, err := c.call(ctx, b, r.clientID, &sub, false)
		if err != nil {
			c.s.brokerFailed()
			return
		}
		answers[i] = a.(*kmsg.DescribeConfigsResponse)
	})
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	type resKey struct {
		t    kmsg.ConfigResourceType
		name string
	}
	got := map[resKey]kmsg.DescribeConfigsResponseResource{}
	for _, a := range answers {
		if a == nil {
			continue
		}
		resp.ThrottleMillis = max(resp.ThrottleMillis, a.ThrottleMillis)
		for _, res := range a.Resources {
			got[resKey{res.ResourceType, res.ResourceName}] = res
		}
	}
	for i, res := range req.Resources {
		if a, ok := got[resKey{res.ResourceType, res.ResourceName}]; ok {
			resp.Resources = append(resp.Resources, a)
			continue
		}
		rr := kmsg.NewDescribeConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = res.ResourceType, res.ResourceName
		if target[i] < 0 && (res.ResourceType == kmsg.ConfigResourceTypeBroker || res.ResourceType == kmsg.ConfigResourceTypeBrokerLogger) {
			rr.ErrorCode = kerr.InvalidRequest.Code
			rr.ErrorMessage = kmsg.StringPtr("no live broker with this node id")
		} else {
			rr.ErrorCode = c.retriable(r, kerr.RequestTimedOut)
		}
		resp.Resources = append(resp.Resources, rr)
	}
	return &response{msg: resp}, nil
}
