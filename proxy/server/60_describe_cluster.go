package server

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeCluster: v0-v1, forwarded to any broker, every broker address rewritten to the
// proxy's advertised endpoint.

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
	for i := range resp.Brokers {
		resp.Brokers[i].Host, resp.Brokers[i].Port = host, port
	}
	return &response{msg: resp}, nil
}
