package server

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeCluster: v0-v1, forwarded to any broker (cluster id, authorized operations) and
// answered with one broker, the proxy, as in Metadata.

const describeClusterKey = 60

func init() { register(describeClusterKey, 0, 1, handleDescribeCluster) }

func handleDescribeCluster(c *conn, r *request) (*response, error) {
	msg, err := c.forwardAnyMsg(r, 0, true)
	if err != nil {
		resp := r.msg.ResponseKind().(*kmsg.DescribeClusterResponse)
		resp.ErrorCode = c.retriable(r, kerr.BrokerNotAvailable)
		resp.ControllerID = -1
		return &response{msg: resp}, nil
	}
	resp := msg.(*kmsg.DescribeClusterResponse)
	host, port := c.s.advertised()
	b := kmsg.NewDescribeClusterResponseBroker()
	b.NodeID, b.Host, b.Port = NodeID, host, port
	resp.Brokers = []kmsg.DescribeClusterResponseBroker{b}
	if resp.ControllerID >= 0 {
		resp.ControllerID = NodeID
	}
	return &response{msg: resp}, nil
}
