package server

import (
	"context"

	"github.com/kafscale/kafscale/broker/acl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeCluster: v0-v1.
//
// The cluster id, the advertised controller and the brokers of the snapshot. v1 adds the
// endpoint type: brokers (1) are answered, controllers (2) get UNSUPPORTED_ENDPOINT_TYPE —
// there is no KRaft quorum to describe. Authorized operations are not computed (MinInt32).
// With ACLs, needs Describe on the cluster (CLUSTER_AUTHORIZATION_FAILED).

const describeClusterKey = 60

func init() { register(describeClusterKey, 0, 1, (*Server).handleDescribeCluster) }

func (s *Server) handleDescribeCluster(_ context.Context, rc *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = req.EndpointType
	if req.Version >= 1 && req.EndpointType != 1 {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		return resp, nil
	}
	if !s.allow(rc, "DescribeCluster", acl.Describe, acl.Cluster, "kafka-cluster") {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	snap := s.cluster.Snapshot()
	resp.ClusterID = snap.ClusterID
	resp.ControllerID = snap.ControllerID
	resp.ClusterAuthorizedOperations = -2147483648
	for _, b := range snap.Brokers {
		rb := kmsg.NewDescribeClusterResponseBroker()
		rb.NodeID, rb.Host, rb.Port = b.NodeID, b.Host, b.Port
		if b.Rack != "" {
			rb.Rack = kmsg.StringPtr(b.Rack)
		}
		resp.Brokers = append(resp.Brokers, rb)
	}
	return resp, nil
}
