package server

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metadata: v0-v12, forwarded to any broker and rewritten.
//
// What the broker answers stays true (ACL filtering, topic auto-creation, leader epochs,
// topic ids, partitions without a leader); only the brokers change: the answer names one
// broker, the proxy (node NodeID at the advertised endpoint), as the leader, replica and ISR
// of every led partition and as the controller. So a client sends everything to the proxy,
// which splits by the real leaders. One node rather than every broker's node id at the proxy's
// address: clients such as librdkafka key brokers by address too, and several node ids at
// one address leave their partitions without a broker. A broker that cannot be reached is
// followed by the next one; with none left the answer carries no brokers and
// LEADER_NOT_AVAILABLE per named topic, so the client asks again.

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
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID, b.Host, b.Port = NodeID, host, port
	resp.Brokers = []kmsg.MetadataResponseBroker{b}
	if resp.ControllerID >= 0 {
		resp.ControllerID = NodeID
	}
	for ti := range resp.Topics {
		t := &resp.Topics[ti]
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			if p.Leader < 0 {
				continue
			}
			p.Leader = NodeID
			p.Replicas, p.ISR, p.OfflineReplicas = []int32{NodeID}, []int32{NodeID}, nil
		}
	}
	return &response{msg: resp}, nil
}

// NodeID is the node id the proxy gives itself in every answer: the one broker clients see.
const NodeID int32 = 0
