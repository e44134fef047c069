package server

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// configEntry is one config as DescribeConfigs reports it.
type configEntry struct {
	name, value string
	source      kmsg.ConfigSource
	readOnly    bool
	typ         kmsg.ConfigType
	doc         string
}

// topicConfigDocs types and documents the topic configs KafScale accepts
// (metadata.ValidateTopicConfig).
var topicConfigDocs = map[string]struct {
	typ kmsg.ConfigType
	doc string
}{
	"retention.ms":                   {kmsg.ConfigTypeLong, "How long data is kept, -1 for ever. Enforced by the partition leader every KAFSCALE_RETENTION_CHECK_INTERVAL_MS."},
	"retention.bytes":                {kmsg.ConfigTypeLong, "How much data a partition keeps, -1 for unlimited. Enforced by the partition leader; the newest chunk always stays."},
	"segment.bytes":                  {kmsg.ConfigTypeInt, "Accepted at creation for tooling; segments are cut by KAFSCALE_SEGMENT_BYTES."},
	"segment.ms":                     {kmsg.ConfigTypeLong, "Accepted at creation for tooling; segments are cut by KAFSCALE_FLUSH_INTERVAL_MS."},
	"max.message.bytes":              {kmsg.ConfigTypeInt, "The largest record batch a produce may carry (as stored: after compression); larger batches are answered MESSAGE_TOO_LARGE. Set at creation."},
	"min.insync.replicas":            {kmsg.ConfigTypeInt, "Accepted for tooling; S3 is the replication."},
	"cleanup.policy":                 {kmsg.ConfigTypeList, "Only delete: compaction is not implemented."},
	"message.timestamp.type":         {kmsg.ConfigTypeString, "Only CreateTime: batches keep the producer's timestamps."},
	"compression.type":               {kmsg.ConfigTypeString, "Only producer: batches are stored as produced."},
	"unclean.leader.election.enable": {kmsg.ConfigTypeBoolean, "Accepted for tooling; there are no replicas."},
}

// topicConfigEntries lists the configs the topic sets and the defaults of the others,
// sorted by name.
func topicConfigEntries(t *metadata.Topic) []configEntry {
	var out []configEntry
	add := func(name, value string, source kmsg.ConfigSource) {
		d := topicConfigDocs[name]
		out = append(out, configEntry{name: name, value: value, source: source,
			readOnly: !metadata.TopicConfigAlterable(name), typ: d.typ, doc: d.doc})
	}
	for name, value := range t.Configs {
		add(name, value, kmsg.ConfigSourceDynamicTopicConfig)
	}
	for name, value := range metadata.TopicConfigDefaults {
		if _, set := t.Configs[name]; !set {
			add(name, value, kmsg.ConfigSourceDefaultConfig)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// brokerConfigEntries lists Config.BrokerSettings, read-only, sorted by name.
func (s *Server) brokerConfigEntries() []configEntry {
	var out []configEntry
	for name, value := range s.cfg.BrokerSettings {
		out = append(out, configEntry{name: name, value: value, source: kmsg.ConfigSourceStaticBrokerConfig,
			readOnly: true, typ: kmsg.ConfigTypeString, doc: "KafScale environment variable, see docs/runtime-settings.md."})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// adminDisabled is the answer to a mutating admin request when KAFSCALE_ALLOW_ADMIN_APIS=false.
func adminDisabled() error {
	return fmt.Errorf("%w: admin APIs are disabled on this broker (KAFSCALE_ALLOW_ADMIN_APIS=false)", kerr.ClusterAuthorizationFailed)
}

// alterBrokerRefused answers alterations of broker resources: broker settings are
// environment variables.
func alterBrokerRefused(rt kmsg.ConfigResourceType) error {
	if rt == kmsg.ConfigResourceTypeBroker || rt == kmsg.ConfigResourceTypeBrokerLogger {
		return fmt.Errorf("%w: broker settings are KAFSCALE_* environment variables and cannot be altered at run time; change the deployment and restart the brokers", kerr.PolicyViolation)
	}
	return fmt.Errorf("%w: resource type %d cannot be altered; only TOPIC (2) resources can", kerr.InvalidRequest, rt)
}

// errorMessage is err as an ErrorMessage: the Kafka error's stock description ("Number of
// partitions is below 1.") is dropped, as the message already says what was wrong.
func errorMessage(err error) *string {
	msg := err.Error()
	var ke *kerr.Error
	if errors.As(err, &ke) {
		msg = strings.ReplaceAll(msg, ke.Error(), ke.Message)
	}
	return kmsg.StringPtr(msg)
}
