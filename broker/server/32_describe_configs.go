package server

import (
	"context"
	"fmt"
	"strconv"

	"github.com/kafscale/kafscale/broker/acl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeConfigs: v0-v4.
//
// TOPIC resources list every config the topic sets (DYNAMIC_TOPIC_CONFIG) and the documented
// defaults of the others (DEFAULT_CONFIG); only the keys of metadata.AlterableTopicConfigs
// are not ReadOnly. An unknown topic is UNKNOWN_TOPIC_OR_PARTITION for that resource.
// BROKER resources named by this broker's id list its settings that are safe to show
// (Config.BrokerSettings, never credentials), all ReadOnly STATIC_BROKER_CONFIG; the empty
// name (dynamic broker configs) lists nothing, as there are none. ConfigNames filters; null
// or empty asks for all, as in Kafka.
// v0 answers IsDefault, v1+ the source and, when asked, one synonym (the entry itself);
// v3+ the config type and, when asked, documentation; v4 is flexible.

const describeConfigsKey = 32

func init() { register(describeConfigsKey, 0, 4, (*Server).handleDescribeConfigs) }

func (s *Server) handleDescribeConfigs(_ context.Context, rc *requestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	snap := s.cluster.Snapshot()
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		var entries []configEntry
		var err error
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			if !s.allow(rc, "DescribeConfigs", acl.DescribeConfigs, acl.Topic, rr.ResourceName) {
				err = fmt.Errorf("%w: DescribeConfigs on topic %q is not allowed for %s", kerr.TopicAuthorizationFailed, rr.ResourceName, rc.principal)
			} else if t := snap.Topic(rr.ResourceName); t != nil {
				entries = topicConfigEntries(t)
			} else {
				err = fmt.Errorf("%w: topic %q does not exist", kerr.UnknownTopicOrPartition, rr.ResourceName)
			}
		case kmsg.ConfigResourceTypeBroker:
			switch {
			case !s.allow(rc, "DescribeConfigs", acl.DescribeConfigs, acl.Cluster, "kafka-cluster"):
				err = fmt.Errorf("%w: DescribeConfigs on the cluster is not allowed for %s", kerr.ClusterAuthorizationFailed, rc.principal)
			case rr.ResourceName == "":
			case rr.ResourceName == strconv.Itoa(int(s.cfg.NodeID)):
				entries = s.brokerConfigEntries()
			default:
				err = fmt.Errorf("%w: this is broker %d; send the request for broker %s to that broker", kerr.InvalidRequest, s.cfg.NodeID, rr.ResourceName)
			}
		default:
			err = fmt.Errorf("%w: resource type %d is not supported; describe TOPIC (2) or BROKER (4) resources", kerr.InvalidRequest, rr.ResourceType)
		}
		if err != nil {
			sr.ErrorCode = s.code("DescribeConfigs", err)
			sr.ErrorMessage = errorMessage(err)
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		wanted := map[string]bool{}
		for _, name := range rr.ConfigNames {
			wanted[name] = true
		}
		for _, e := range entries {
			if len(rr.ConfigNames) > 0 && !wanted[e.name] {
				continue
			}
			c := kmsg.NewDescribeConfigsResponseResourceConfig()
			c.Name, c.Value, c.ReadOnly = e.name, kmsg.StringPtr(e.value), e.readOnly
			c.IsDefault = e.source == kmsg.ConfigSourceDefaultConfig
			c.Source, c.ConfigType = e.source, e.typ
			if req.IncludeSynonyms {
				syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
				syn.Name, syn.Value, syn.Source = e.name, c.Value, e.source
				c.ConfigSynonyms = append(c.ConfigSynonyms, syn)
			}
			if req.IncludeDocumentation && e.doc != "" {
				c.Documentation = kmsg.StringPtr(e.doc)
			}
			sr.Configs = append(sr.Configs, c)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}
