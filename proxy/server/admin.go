package server

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Admin requests go, unchanged, to any live broker that accepts their version (every broker
// serves them: the metadata snapshot in etcd is shared), and the broker's answer goes back
// as it wrote it: CreateTopics (v0-v7), DeleteTopics (v0-v6), AlterConfigs (v0-v2),
// IncrementalAlterConfigs (v0-v1), CreatePartitions (v0-v3); InitProducerId (v0-v5) too,
// since producer ids come from one counter in etcd. DescribeConfigs is in
// 32_describe_configs.go.
//
// A broker that cannot be reached is followed by the next one only for InitProducerId (a
// second id wastes nothing); the others may have been applied, so the client gets
// REQUEST_TIMED_OUT per resource and decides (its retry sees TOPIC_ALREADY_EXISTS or the
// like if the first one was applied).

const (
	createTopicsKey            = 19
	deleteTopicsKey            = 20
	initProducerIDKey          = 22
	alterConfigsKey            = 33
	createPartitionsKey        = 37
	incrementalAlterConfigsKey = 44
)

func init() {
	register(createTopicsKey, 0, 7, adminHandler(false, func(m kmsg.Request) int32 { return m.(*kmsg.CreateTopicsRequest).TimeoutMillis },
		func(m kmsg.Request, code int16) kmsg.Response {
			req := m.(*kmsg.CreateTopicsRequest)
			resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
			for _, t := range req.Topics {
				rt := kmsg.NewCreateTopicsResponseTopic()
				rt.Topic, rt.ErrorCode, rt.NumPartitions, rt.ReplicationFactor = t.Topic, code, -1, -1
				resp.Topics = append(resp.Topics, rt)
			}
			return resp
		}))
	register(deleteTopicsKey, 0, 6, adminHandler(false, func(m kmsg.Request) int32 { return m.(*kmsg.DeleteTopicsRequest).TimeoutMillis },
		func(m kmsg.Request, code int16) kmsg.Response {
			req := m.(*kmsg.DeleteTopicsRequest)
			resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
			for _, name := range req.TopicNames {
				rt := kmsg.NewDeleteTopicsResponseTopic()
				rt.Topic, rt.ErrorCode = kmsg.StringPtr(name), code
				resp.Topics = append(resp.Topics, rt)
			}
			for _, t := range req.Topics {
				rt := kmsg.NewDeleteTopicsResponseTopic()
				rt.Topic, rt.TopicID, rt.ErrorCode = t.Topic, t.TopicID, code
				resp.Topics = append(resp.Topics, rt)
			}
			return resp
		}))
	register(initProducerIDKey, 0, 5, adminHandler(true, nil, func(m kmsg.Request, code int16) kmsg.Response {
		resp := m.ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch = code, -1, -1
		return resp
	}))
	register(alterConfigsKey, 0, 2, adminHandler(false, nil, func(m kmsg.Request, code int16) kmsg.Response {
		req := m.(*kmsg.AlterConfigsRequest)
		resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
		for _, r := range req.Resources {
			rr := kmsg.NewAlterConfigsResponseResource()
			rr.ResourceType, rr.ResourceName, rr.ErrorCode = r.ResourceType, r.ResourceName, code
			resp.Resources = append(resp.Resources, rr)
		}
		return resp
	}))
	register(incrementalAlterConfigsKey, 0, 1, adminHandler(false, nil, func(m kmsg.Request, code int16) kmsg.Response {
		req := m.(*kmsg.IncrementalAlterConfigsRequest)
		resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
		for _, r := range req.Resources {
			rr := kmsg.NewIncrementalAlterConfigsResponseResource()
			rr.ResourceType, rr.ResourceName, rr.ErrorCode = r.ResourceType, r.ResourceName, code
			resp.Resources = append(resp.Resources, rr)
		}
		return resp
	}))
	register(createPartitionsKey, 0, 3, adminHandler(false, func(m kmsg.Request) int32 { return m.(*kmsg.CreatePartitionsRequest).TimeoutMillis },
		func(m kmsg.Request, code int16) kmsg.Response {
			req := m.(*kmsg.CreatePartitionsRequest)
			resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
			for _, t := range req.Topics {
				rt := kmsg.NewCreatePartitionsResponseTopic()
				rt.Topic, rt.ErrorCode = t.Topic, code
				resp.Topics = append(resp.Topics, rt)
			}
			return resp
		}))
}

// adminHandler forwards to any capable broker. timeout reads the request's own timeout
// (nil: none); failure builds the answer carrying an error code for every resource.
func adminHandler(idempotent bool, timeout func(kmsg.Request) int32, failure func(kmsg.Request, int16) kmsg.Response) handler {
	return func(c *conn, r *request) (*response, error) {
		var own int32
		if timeout != nil {
			own = timeout(r.msg)
		}
		body, err := c.forwardAny(r, millis(own), idempotent)
		if err != nil {
			code := kerr.RequestTimedOut
			if err == errNoBroker {
				code = kerr.BrokerNotAvailable
			}
			return &response{msg: failure(r.msg, c.retriable(r, code))}, nil
		}
		return &response{raw: body}, nil
	}
}
