package metadata

import (
	"errors"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestConfigChangeApply(t *testing.T) {
	start := map[string]string{"retention.ms": "1", "retention.bytes": "2", "cleanup.policy": "delete"}
	cases := []struct {
		name   string
		change ConfigChange
		want   map[string]string
	}{
		{"set", ConfigChange{Set: map[string]string{"retention.ms": "9"}},
			map[string]string{"retention.ms": "9", "retention.bytes": "2", "cleanup.policy": "delete"}},
		{"delete", ConfigChange{Delete: []string{"retention.bytes"}},
			map[string]string{"retention.ms": "1", "cleanup.policy": "delete"}},
		{"replace keeps fixed keys", ConfigChange{Replace: true, Set: map[string]string{"retention.bytes": "7"}},
			map[string]string{"retention.bytes": "7", "cleanup.policy": "delete"}},
		{"replace to nothing", ConfigChange{Replace: true}, map[string]string{"cleanup.policy": "delete"}},
	}
	for _, tc := range cases {
		if got := tc.change.Apply(start); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if start["retention.ms"] != "1" || len(start) != 3 {
		t.Fatalf("Apply modified its input: %v", start)
	}
	if got := (ConfigChange{Replace: true}).Apply(map[string]string{"retention.ms": "1"}); got != nil {
		t.Fatalf("empty result should be nil, got %v", got)
	}
}

func TestValidateAlterableTopicConfig(t *testing.T) {
	cases := []struct {
		key, value string
		ok         bool
	}{
		{"retention.ms", "-1", true},
		{"retention.ms", "604800000", true},
		{"retention.bytes", "1073741824", true},
		{"retention.ms", "-2", false},
		{"retention.bytes", "1GB", false},
		{"segment.bytes", "1048576", false},
		{"cleanup.policy", "delete", false},
	}
	for _, tc := range cases {
		err := ValidateAlterableTopicConfig(tc.key, tc.value)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, kerr.InvalidConfig)) {
			t.Errorf("%s=%s: %v", tc.key, tc.value, err)
		}
	}
}

func TestCheckAddPartitions(t *testing.T) {
	topic := &Topic{Name: "t", Partitions: []Partition{{ID: 0}, {ID: 1}}}
	live := []Broker{{NodeID: 0}, {NodeID: 2}}
	cases := []struct {
		name    string
		total   int32
		leaders []int32
		want    error
	}{
		{"grow", 3, nil, nil},
		{"equal", 2, nil, kerr.InvalidPartitions},
		{"shrink", 1, nil, kerr.InvalidPartitions},
		{"over the limit", MaxPartitionsPerTopic + 1, nil, kerr.InvalidPartitions},
		{"live leaders", 4, []int32{2, 0}, nil},
		{"dead leader", 3, []int32{1}, kerr.InvalidReplicaAssignment},
		{"too few leaders", 4, []int32{0}, kerr.InvalidReplicaAssignment},
	}
	for _, tc := range cases {
		err := CheckAddPartitions(topic, tc.total, tc.leaders, live)
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}
