package server

import (
	"sync"
	"time"

	"github.com/kafscale/kafscale/broker/acl"
)

// Authorization (KAFSCALE_ACL_*): each handler asks allow for the resources of its request,
// mapped as Kafka maps them (see docs/operations.md), and answers a denied resource with
// TOPIC_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED or CLUSTER_AUTHORIZATION_FAILED in
// its place of the response; the connection stays open. Listings (Metadata of all topics,
// OffsetFetch of all topics, ListGroups) leave out what the principal may not describe.

// The principal of a request, from KAFSCALE_PRINCIPAL_SOURCE.
const (
	principalRemoteAddr = "remote_addr"
	principalProxyAddr  = "proxy_addr"
)

// principal is the ACL principal of a request on c with the given client id.
func (c *conn) principal(clientID string) string {
	switch c.s.cfg.PrincipalSource {
	case principalRemoteAddr:
		return "User:" + c.peerIP
	case principalProxyAddr:
		if c.proxyIP != "" {
			return "User:" + c.proxyIP
		}
		return "User:" + c.peerIP // LOCAL header: no client address
	default:
		return "User:" + clientID
	}
}

// allow reports whether the request's principal may perform op on the resource; a denial
// is counted and logged (rate-limited).
func (s *Server) allow(rc *requestContext, api string, op acl.Operation, typ acl.ResourceType, name string) bool {
	if s.cfg.Authorizer.Allow(rc.principal, op, typ, name) {
		return true
	}
	s.metrics.aclDenied.WithLabelValues(api).Inc()
	if ok, suppressed := s.denialLog.take(time.Now()); ok {
		s.logger.Warn("authorization denied", "principal", rc.principal, "action", acl.ActionFor(op, typ),
			"resource", string(typ)+":"+name, "api", api, "operation", string(op), "remote", rc.remote,
			"suppressed_since_last", suppressed)
	}
	return false
}

// allowQuiet is allow without counting or logging, for listings that leave out what the
// principal may not see (Kafka does not log those either).
func (s *Server) allowQuiet(rc *requestContext, op acl.Operation, typ acl.ResourceType, name string) bool {
	return s.cfg.Authorizer.Allow(rc.principal, op, typ, name)
}

// Denial log rate: at most denialLogBurst lines per denialLogInterval; the next line after
// a quiet period says how many were left out.
const (
	denialLogBurst    = 10
	denialLogInterval = 10 * time.Second
)

type logLimiter struct {
	mu         sync.Mutex
	start      time.Time
	n          int
	suppressed int
}

// take reports whether a line may be logged now, and how many were suppressed before it.
func (l *logLimiter) take(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.start) >= denialLogInterval {
		l.start, l.n = now, 0
	}
	if l.n >= denialLogBurst {
		l.suppressed++
		return false, 0
	}
	l.n++
	s := l.suppressed
	l.suppressed = 0
	return true, s
}

// mayCreateTopic: Create on the cluster allows every topic, as in Kafka, else Create on the
// topic. api "" checks without counting or logging a denial.
func (s *Server) mayCreateTopic(rc *requestContext, api, topic string) bool {
	if s.allowQuiet(rc, acl.Create, acl.Cluster, "kafka-cluster") {
		return true
	}
	if api == "" {
		return s.allowQuiet(rc, acl.Create, acl.Topic, topic)
	}
	return s.allow(rc, api, acl.Create, acl.Topic, topic)
}
