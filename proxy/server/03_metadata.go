package server

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metadata: v0-v12, forwarded to any broker and rewritten.
//
// What the broker answers stays true (ACL filtering, topic auto-creation, leader epochs,
// topic ids): only the broker addresses change, every one becoming the proxy's advertised
// endpoint, so a client keeps talking to the proxy whichever broker leads. Node ids stay, so
// clients still group partitions by leader. A broker that cannot be reached is followed by
// the next one; with none left the answer carries no brokers and LEADER_NOT_AVAILABLE per
// named topic, so the client asks again.

const metadataKey = 3

func init() { register(metadataKey, 0, 12, handleMetadata) }

func handleMetadata(c *conn, r *request) (*response, error) {
	msg, err := c.forwardAnyMsg(r, 0, true)
	if err != nil {
		req := r.msg.(*kmsg.MetadataRequest)
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		resp.ControllerID = -1
		for _, t := range req.Topics {
			rt := kmsg.NewMetadataResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			rt.ErrorCode = c.retriable(r, kerr.LeaderNotAvailable)
			resp.Topics = append(resp.Topics, rt)
		}
		return &response{msg: resp}, nil
	}
	resp := msg.(*kmsg.MetadataResponse)
	host, port := c.s.advertised()
	for i := range resp.Brokers {
		resp.Brokers[i].Host, resp.Brokers[i].Port = host, port
	}
	return &response{msg: resp}, nil
}
