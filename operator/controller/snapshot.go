package controller

import (
	"crypto/rand"
	"encoding/base64"
	"maps"
	"strconv"

	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/kafscale/kafscale/operator/api/v1alpha1"
)

// TopicName is the Kafka name of a KafscaleTopic.
func TopicName(t *v1alpha1.KafscaleTopic) string {
	if t.Spec.TopicName != "" {
		return t.Spec.TopicName
	}
	return t.Name
}

// TopicConfigs are the Kafka configs a KafscaleTopic asks for: spec.configs plus retention.
func TopicConfigs(t *v1alpha1.KafscaleTopic) map[string]string {
	cfg := maps.Clone(t.Spec.Configs)
	if cfg == nil {
		cfg = map[string]string{}
	}
	if r := t.Spec.Retention.Ms; r != nil {
		cfg["retention.ms"] = strconv.FormatInt(*r, 10)
	}
	if r := t.Spec.Retention.Bytes; r != nil {
		cfg["retention.bytes"] = strconv.FormatInt(*r, 10)
	}
	return cfg
}

// ensureClusterID gives a snapshot that has none a cluster id. It reports a change.
func ensureClusterID(s *metadata.Snapshot) bool {
	if s.ClusterID != "" {
		return false
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	s.ClusterID = base64.RawURLEncoding.EncodeToString(b[:])
	return true
}

// applyTopic makes the snapshot hold the topic with at least `partitions` partitions and
// exactly these configs. Existing partitions keep their leaders; new ones go to the
// published broker leading the fewest partitions (-1 with none: the brokers' controller
// assigns them when one registers). Topics it does not name are left alone, so topics made
// through the Kafka API survive. It reports a change.
func applyTopic(s *metadata.Snapshot, name string, partitions int32, configs map[string]string) bool {
	changed := false
	t := s.Topic(name)
	if t == nil {
		var id [16]byte
		_, _ = rand.Read(id[:])
		id[0] |= 1 // never all zero
		s.Topics = append(s.Topics, metadata.Topic{Name: name, ID: id})
		s.Normalize()
		t = s.Topic(name)
		changed = true
	}
	for p := int32(len(t.Partitions)); p < partitions; p++ {
		t.Partitions = append(t.Partitions, metadata.Partition{ID: p, Leader: leastLoaded(s), LeaderEpoch: 0})
		changed = true
	}
	if len(configs) == 0 {
		configs = nil
	}
	if !maps.Equal(t.Configs, configs) {
		t.Configs = maps.Clone(configs)
		changed = true
	}
	return changed
}

// removeTopic drops a topic from the snapshot. It reports a change.
func removeTopic(s *metadata.Snapshot, name string) bool {
	for i := range s.Topics {
		if s.Topics[i].Name == name {
			s.Topics = append(s.Topics[:i], s.Topics[i+1:]...)
			return true
		}
	}
	return false
}

func leastLoaded(s *metadata.Snapshot) int32 {
	if len(s.Brokers) == 0 {
		return -1
	}
	load := map[int32]int{}
	for _, t := range s.Topics {
		for _, p := range t.Partitions {
			load[p.Leader]++
		}
	}
	best := s.Brokers[0].NodeID
	for _, b := range s.Brokers[1:] {
		if load[b.NodeID] < load[best] {
			best = b.NodeID
		}
	}
	return best
}
