package controller

import (
	"maps"
	"testing"

	"k8s.io/utils/ptr"

	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/kafscale/kafscale/operator/api/v1alpha1"
)

func TestApplyTopic(t *testing.T) {
	kafkaMade := metadata.Topic{Name: "made-by-client", ID: [16]byte{9}, Partitions: []metadata.Partition{{ID: 0, Leader: 2, LeaderEpoch: 3}}}
	cases := []struct {
		name       string
		start      metadata.Snapshot
		partitions int32
		configs    map[string]string
		changed    bool
		leaders    []int32
	}{
		{"new topic, no brokers", metadata.Snapshot{Topics: []metadata.Topic{kafkaMade}}, 2, nil, true, []int32{-1, -1}},
		{"new topic spread over brokers", metadata.Snapshot{Brokers: []metadata.Broker{{NodeID: 1}, {NodeID: 2}}, Topics: []metadata.Topic{kafkaMade}}, 3, nil, true, []int32{1, 1, 2}},
		{"unchanged", metadata.Snapshot{Topics: []metadata.Topic{kafkaMade, {Name: "orders", ID: [16]byte{1}, Partitions: []metadata.Partition{{ID: 0, Leader: 2, LeaderEpoch: 4}}}}}, 1, nil, false, []int32{2}},
		{"grow keeps leaders", metadata.Snapshot{Brokers: []metadata.Broker{{NodeID: 1}}, Topics: []metadata.Topic{{Name: "orders", ID: [16]byte{1}, Partitions: []metadata.Partition{{ID: 0, Leader: 2, LeaderEpoch: 4}}}}}, 2, nil, true, []int32{2, 1}},
		{"never shrinks", metadata.Snapshot{Topics: []metadata.Topic{{Name: "orders", ID: [16]byte{1}, Partitions: []metadata.Partition{{ID: 0}, {ID: 1, Leader: 1}}}}}, 1, nil, false, []int32{0, 1}},
		{"configs", metadata.Snapshot{Topics: []metadata.Topic{{Name: "orders", ID: [16]byte{1}, Partitions: []metadata.Partition{{ID: 0}}}}}, 1, map[string]string{"retention.ms": "1000"}, true, []int32{0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.start.Clone()
			s.Normalize()
			if got := applyTopic(s, "orders", tc.partitions, tc.configs); got != tc.changed {
				t.Errorf("changed = %v", got)
			}
			topic := s.Topic("orders")
			var leaders []int32
			for _, p := range topic.Partitions {
				leaders = append(leaders, p.Leader)
			}
			if !equalInt32(leaders, tc.leaders) {
				t.Errorf("leaders = %v, want %v", leaders, tc.leaders)
			}
			if topic.ID == ([16]byte{}) {
				t.Error("zero topic id")
			}
			if !maps.Equal(topic.Configs, tc.configs) {
				t.Errorf("configs = %v", topic.Configs)
			}
			for _, other := range tc.start.Topics {
				if other.Name != "orders" && s.Topic(other.Name) == nil {
					t.Errorf("topic %s dropped", other.Name)
				}
			}
		})
	}
}

func equalInt32(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRemoveTopicAndClusterID(t *testing.T) {
	s := &metadata.Snapshot{Topics: []metadata.Topic{{Name: "a"}, {Name: "b"}}}
	if !removeTopic(s, "a") || removeTopic(s, "a") || len(s.Topics) != 1 || s.Topics[0].Name != "b" {
		t.Errorf("remove: %+v", s.Topics)
	}
	if !ensureClusterID(s) || s.ClusterID == "" || ensureClusterID(s) {
		t.Errorf("cluster id %q", s.ClusterID)
	}
}

func TestTopicNameAndConfigs(t *testing.T) {
	k := &v1alpha1.KafscaleTopic{}
	k.Name = "orders-crd"
	k.Spec.Configs = map[string]string{"cleanup.policy": "delete"}
	k.Spec.Retention.Ms = ptr.To[int64](-1)
	if TopicName(k) != "orders-crd" {
		t.Error(TopicName(k))
	}
	k.Spec.TopicName = "orders"
	cfg := TopicConfigs(k)
	if TopicName(k) != "orders" || cfg["retention.ms"] != "-1" || cfg["cleanup.policy"] != "delete" || len(cfg) != 2 || len(k.Spec.Configs) != 1 {
		t.Errorf("%s %v", TopicName(k), cfg)
	}
}
