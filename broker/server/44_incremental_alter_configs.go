package server

import (
	"context"
	"fmt"

	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// IncrementalAlterConfigs: v0-v1.
//
// SET and DELETE the alterable topic configs (metadata.AlterableTopicConfigs: retention.ms,
// retention.bytes); the other configs of the topic are kept. Any other key is INVALID_CONFIG,
// naming the key and the alterable ones; values are checked (integers >= -1). APPEND and
// SUBTRACT are INVALID_CONFIG: no alterable config is a list. ValidateOnly checks without
// writing. BROKER and BROKER_LOGGER resources are POLICY_VIOLATION. Refused when
// KAFSCALE_ALLOW_ADMIN_APIS=false. v1 is flexible.

const incrementalAlterConfigsKey = 44

func init() {
	register(incrementalAlterConfigsKey, 0, 1, (*Server).handleIncrementalAlterConfigs)
}

func (s *Server) handleIncrementalAlterConfigs(ctx context.Context, rc *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	ctx, cancel := context.WithTimeout(ctx, alterConfigsTimeout)
	defer cancel()
	seen := map[[2]string]int{}
	for _, rr := range req.Resources {
		seen[resourceKey(rr.ResourceType, rr.ResourceName)]++
	}
	for _, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		err := s.alterTopicConfigs(ctx, rc, "IncrementalAlterConfigs", rr.ResourceType, rr.ResourceName, seen[resourceKey(rr.ResourceType, rr.ResourceName)] > 1, req.ValidateOnly, func() (metadata.ConfigChange, error) {
			change := metadata.ConfigChange{Set: map[string]string{}}
			named := map[string]bool{}
			for _, c := range rr.Configs {
				if named[c.Name] {
					return change, fmt.Errorf("%w: config %q named more than once", kerr.InvalidRequest, c.Name)
				}
				named[c.Name] = true
				if !metadata.TopicConfigAlterable(c.Name) {
					return change, metadata.ValidateAlterableTopicConfig(c.Name, "")
				}
				switch c.Op {
				case kmsg.IncrementalAlterConfigOpSet:
					if c.Value == nil {
						return change, fmt.Errorf("%w: SET %q needs a value", kerr.InvalidConfig, c.Name)
					}
					if err := metadata.ValidateAlterableTopicConfig(c.Name, *c.Value); err != nil {
						return change, err
					}
					change.Set[c.Name] = *c.Value
				case kmsg.IncrementalAlterConfigOpDelete:
					change.Delete = append(change.Delete, c.Name)
				case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
					return change, fmt.Errorf("%w: %s is not allowed for %q: it is not a list config; use SET or DELETE", kerr.InvalidConfig, c.Op, c.Name)
				default:
					return change, fmt.Errorf("%w: unknown operation %d for %q", kerr.InvalidRequest, c.Op, c.Name)
				}
			}
			return change, nil
		})
		if err != nil {
			sr.ErrorCode = s.code("IncrementalAlterConfigs", err)
			sr.ErrorMessage = errorMessage(err)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}
