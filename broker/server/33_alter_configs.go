package server

import (
	"context"
	"fmt"
	"time"

	"github.com/kafscale/kafscale/broker/acl"
	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterConfigs: v0-v2.
//
// Replaces a topic's alterable configs (metadata.AlterableTopicConfigs: retention.ms,
// retention.bytes) with the ones given: alterable keys left out go back to their defaults;
// configs set at creation outside the whitelist are kept. Any other key is INVALID_CONFIG,
// naming the key and the alterable ones; values are checked (integers >= -1). ValidateOnly
// checks without writing. BROKER and BROKER_LOGGER resources are POLICY_VIOLATION (broker
// settings are environment variables). Refused when KAFSCALE_ALLOW_ADMIN_APIS=false.
// v2 is flexible.

const alterConfigsKey = 33

// alterConfigsTimeout bounds one alteration, etcd retries included.
const alterConfigsTimeout = 30 * time.Second

func init() { register(alterConfigsKey, 0, 2, (*Server).handleAlterConfigs) }

func (s *Server) handleAlterConfigs(ctx context.Context, rc *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	ctx, cancel := context.WithTimeout(ctx, alterConfigsTimeout)
	defer cancel()
	seen := map[[2]string]int{}
	for _, rr := range req.Resources {
		seen[resourceKey(rr.ResourceType, rr.ResourceName)]++
	}
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		err := s.alterTopicConfigs(ctx, rc, "AlterConfigs", rr.ResourceType, rr.ResourceName, seen[resourceKey(rr.ResourceType, rr.ResourceName)] > 1, req.ValidateOnly, func() (metadata.ConfigChange, error) {
			change := metadata.ConfigChange{Replace: true, Set: map[string]string{}}
			for _, c := range rr.Configs {
				if _, dup := change.Set[c.Name]; dup {
					return change, fmt.Errorf("%w: config %q named more than once", kerr.InvalidRequest, c.Name)
				}
				if c.Value == nil {
					return change, fmt.Errorf("%w: config %q has a null value; leave it out to reset it", kerr.InvalidConfig, c.Name)
				}
				if err := metadata.ValidateAlterableTopicConfig(c.Name, *c.Value); err != nil {
					return change, err
				}
				change.Set[c.Name] = *c.Value
			}
			return change, nil
		})
		if err != nil {
			sr.ErrorCode = s.code("AlterConfigs", err)
			sr.ErrorMessage = errorMessage(err)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

func resourceKey(rt kmsg.ConfigResourceType, name string) [2]string {
	return [2]string{rt.String(), name}
}

// alterTopicConfigs applies the checks shared by AlterConfigs and IncrementalAlterConfigs,
// builds the change and hands it to the cluster.
func (s *Server) alterTopicConfigs(ctx context.Context, rc *requestContext, api string, rt kmsg.ConfigResourceType, name string, duplicate, validateOnly bool, build func() (metadata.ConfigChange, error)) error {
	switch {
	case !s.cfg.AllowAdminAPIs:
		return adminDisabled()
	case rt == kmsg.ConfigResourceTypeTopic && !s.allow(rc, api, acl.AlterConfigs, acl.Topic, name):
		return fmt.Errorf("%w: AlterConfigs on topic %q is not allowed for %s", kerr.TopicAuthorizationFailed, name, rc.principal)
	case rt != kmsg.ConfigResourceTypeTopic && !s.allow(rc, api, acl.AlterConfigs, acl.Cluster, "kafka-cluster"):
		return fmt.Errorf("%w: AlterConfigs on the cluster is not allowed for %s", kerr.ClusterAuthorizationFailed, rc.principal)
	case duplicate:
		return fmt.Errorf("%w: resource named more than once in the request", kerr.InvalidRequest)
	case rt != kmsg.ConfigResourceTypeTopic:
		return alterBrokerRefused(rt)
	case s.cluster.Snapshot().Topic(name) == nil:
		return fmt.Errorf("%w: topic %q does not exist", kerr.UnknownTopicOrPartition, name)
	}
	change, err := build()
	if err != nil {
		return err
	}
	return s.cluster.AlterTopicConfigs(ctx, name, change, validateOnly)
}
