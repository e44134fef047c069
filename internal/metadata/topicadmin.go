package metadata

import (
	"context"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
)

// AlterableTopicConfigs are the topic configs AlterConfigs and IncrementalAlterConfigs may
// change. Partition leaders enforce retention (broker/partition, docs/storage.md). Other
// configs are fixed once the topic is created.
var AlterableTopicConfigs = []string{"retention.ms", "retention.bytes"}

// TopicConfigDefaults are the values a topic config has when the topic does not set it,
// as documented in docs/operations.md.
var TopicConfigDefaults = map[string]string{
	"retention.ms":                   "604800000",
	"retention.bytes":                "-1",
	"max.message.bytes":              "1048588",
	"cleanup.policy":                 "delete",
	"message.timestamp.type":         "CreateTime",
	"compression.type":               "producer",
	"min.insync.replicas":            "1",
	"unclean.leader.election.enable": "false",
}

// TopicConfig is the value of a topic config in configs (a topic's Configs), or its default
// (TopicConfigDefaults) when configs does not set it: the one place a topic config is read.
func TopicConfig(configs map[string]string, key string) string {
	if v, ok := configs[key]; ok {
		return v
	}
	return TopicConfigDefaults[key]
}

// Config is TopicConfig for t (the defaults when t is nil).
func (t *Topic) Config(key string) string {
	if t == nil {
		return TopicConfigDefaults[key]
	}
	return TopicConfig(t.Configs, key)
}

// TopicConfigAlterable says whether AlterTopicConfigs may change key.
func TopicConfigAlterable(key string) bool {
	for _, k := range AlterableTopicConfigs {
		if k == key {
			return true
		}
	}
	return false
}

// ValidateAlterableTopicConfig checks that key may be changed and that value suits it.
// Failures are kerr.InvalidConfig with a message naming the key and the alterable ones.
func ValidateAlterableTopicConfig(key, value string) error {
	if !TopicConfigAlterable(key) {
		return fmt.Errorf("topic config %q cannot be changed; alterable configs are %s: %w", key, strings.Join(AlterableTopicConfigs, ", "), kerr.InvalidConfig)
	}
	return ValidateTopicConfig(key, value)
}

// ConfigChange is one alteration of a topic's configs.
type ConfigChange struct {
	// Replace makes the alterable configs exactly Set (AlterConfigs): alterable keys not in
	// Set go back to their defaults. Configs outside the whitelist are kept either way.
	Replace bool
	// Set gives keys new values.
	Set map[string]string
	// Delete returns keys to their defaults (IncrementalAlterConfigs DELETE).
	Delete []string
}

// AlterTopicConfigs applies change to a topic's configs in one compare-and-swap. With
// validateOnly it checks against the latest snapshot without writing. Errors:
// kerr.UnknownTopicOrPartition, kerr.InvalidConfig, kerr.RequestTimedOut.
func (s *Store) AlterTopicConfigs(ctx context.Context, name string, change ConfigChange, validateOnly bool) error {
	for k, v := range change.Set {
		if err := ValidateAlterableTopicConfig(k, v); err != nil {
			return err
		}
	}
	for _, k := range change.Delete {
		if !TopicConfigAlterable(k) {
			return ValidateAlterableTopicConfig(k, "")
		}
	}
	_, err := s.Update(ctx, func(snap *Snapshot) error {
		t := snap.Topic(name)
		if t == nil {
			return fmt.Errorf("topic %q: %w", name, kerr.UnknownTopicOrPartition)
		}
		if validateOnly {
			return ErrNoChange
		}
		t.Configs = change.Apply(t.Configs)
		return nil
	})
	return err
}

// Apply returns configs with the change made; configs is not modified.
func (c ConfigChange) Apply(configs map[string]string) map[string]string {
	out := make(map[string]string, len(configs)+len(c.Set))
	for k, v := range configs {
		if c.Replace && TopicConfigAlterable(k) {
			continue
		}
		out[k] = v
	}
	for _, k := range c.Delete {
		delete(out, k)
	}
	for k, v := range c.Set {
		out[k] = v
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// AddPartitions grows a topic to total partitions (additive only). leaders, when given,
// names the leader of each new partition (len must be total minus the current count, each a
// live broker); otherwise the least-loaded live brokers lead them. With validateOnly it
// checks against the latest snapshot without writing. Errors: kerr.UnknownTopicOrPartition,
// kerr.InvalidPartitions, kerr.InvalidReplicaAssignment, kerr.RequestTimedOut.
func (s *Store) AddPartitions(ctx context.Context, name string, total int32, leaders []int32, validateOnly bool) error {
	if leaders == nil && !validateOnly {
		return s.CreatePartitions(ctx, name, total)
	}
	live, err := s.LiveBrokers(ctx)
	if err != nil {
		return err
	}
	_, err = s.Update(ctx, func(snap *Snapshot) error {
		t := snap.Topic(name)
		if t == nil {
			return fmt.Errorf("topic %q: %w", name, kerr.UnknownTopicOrPartition)
		}
		if err := CheckAddPartitions(t, total, leaders, live); err != nil {
			return err
		}
		if validateOnly {
			return ErrNoChange
		}
		for _, leader := range leaders {
			t.Partitions = append(t.Partitions, Partition{ID: int32(len(t.Partitions)), Leader: leader})
		}
		return nil
	})
	return err
}

// CheckAddPartitions validates growing t to total partitions with the given leaders (nil:
// the broker picks) against the live brokers.
func CheckAddPartitions(t *Topic, total int32, leaders []int32, live []Broker) error {
	have := int32(len(t.Partitions))
	if total <= have {
		return fmt.Errorf("topic %q has %d partitions; asked for %d: partitions can only be added, ask for more than %d: %w", t.Name, have, total, have, kerr.InvalidPartitions)
	}
	if total > MaxPartitionsPerTopic {
		return fmt.Errorf("topic %q: %d partitions asked for, at most %d: %w", t.Name, total, MaxPartitionsPerTopic, kerr.InvalidPartitions)
	}
	if leaders == nil {
		return nil
	}
	if int32(len(leaders)) != total-have {
		return fmt.Errorf("topic %q: %d assignments for %d new partitions: %w", t.Name, len(leaders), total-have, kerr.InvalidReplicaAssignment)
	}
	for _, l := range leaders {
		if !hasBroker(live, l) {
			return fmt.Errorf("topic %q: broker %d in the assignment is not a live broker: %w", t.Name, l, kerr.InvalidReplicaAssignment)
		}
	}
	return nil
}
