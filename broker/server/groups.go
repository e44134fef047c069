package server

import (
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
)

// SetGroups gives the server its group coordinator. Without one every group API answers
// COORDINATOR_NOT_AVAILABLE (or NOT_COORDINATOR where a coordinator error is per group).
func (s *Server) SetGroups(g Groups) { s.groups = g }

// noCoordinator is the error of group requests on a server without a coordinator.
var noCoordinator = kerr.CoordinatorNotAvailable

// clientHost is the client's address as Kafka shows it in DescribeGroups: "/" and the IP.
func clientHost(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	return "/" + host
}
