package metadata

import (
	"context"
	"crypto/rand"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// MaxPartitionsPerTopic bounds CreateTopic.
const MaxPartitionsPerTopic = 10000

// ValidateTopicName applies Kafka's rules: 1 to 249 characters of [a-zA-Z0-9._-], not "."
// or "..". Failures are kerr.InvalidTopicException.
func ValidateTopicName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 249 {
		return fmt.Errorf("topic name %q: must be 1 to 249 characters and not \".\" or \"..\": %w", name, kerr.InvalidTopicException)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("topic name %q: only ASCII letters, digits, '.', '_' and '-' are allowed: %w", name, kerr.InvalidTopicException)
		}
	}
	return nil
}

// topicConfigs are the topic configs KafScale accepts, with their validators.
var topicConfigs = map[string]func(string) error{
	"retention.ms":                   intAtLeast(-1),
	"retention.bytes":                intAtLeast(-1),
	"segment.bytes":                  intAtLeast(1),
	"segment.ms":                     intAtLeast(1),
	"max.message.bytes":              intAtLeast(0),
	"min.insync.replicas":            intAtLeast(1),
	"cleanup.policy":                 oneOf("delete"),        // compaction is not implemented
	"message.timestamp.type":         oneOf("CreateTime"),    // stored batches keep producer timestamps
	"compression.type":               oneOf("producer"),      // batches are stored as produced
	"unclean.leader.election.enable": oneOf("false", "true"), // accepted for tooling; there are no replicas
}

func intAtLeast(minimum int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < minimum {
			return fmt.Errorf("must be an integer >= %d", minimum)
		}
		return nil
	}
}

func oneOf(allowed ...string) func(string) error {
	return func(v string) error {
		for _, a := range allowed {
			if v == a {
				return nil
			}
		}
		return fmt.Errorf("must be one of %q", allowed)
	}
}

// ValidateTopicConfig checks one topic config. Unknown keys and bad values are
// kerr.InvalidConfig.
func ValidateTopicConfig(key, value string) error {
	check, ok := topicConfigs[key]
	if !ok {
		return fmt.Errorf("topic config %q is not supported: %w", key, kerr.InvalidConfig)
	}
	if err := check(value); err != nil {
		return fmt.Errorf("topic config %s=%q: %v: %w", key, value, err, kerr.InvalidConfig)
	}
	return nil
}

// CreateTopic adds a topic with a fresh random ID, its partitions led by the live brokers
// (each partition to the broker leading the fewest), LeaderEpoch 0. Errors:
// kerr.InvalidTopicException, kerr.InvalidPartitions, kerr.InvalidConfig,
// kerr.TopicAlreadyExists, kerr.InvalidReplicationFactor (no live broker),
// kerr.RequestTimedOut (etcd).
func (s *Store) CreateTopic(ctx context.Context, name string, partitions int32, configs map[string]string) error {
	return s.createTopic(ctx, name, partitions, nil, configs)
}

// CreateTopicAssigned is CreateTopic with a manual assignment: partition i is led by
// leaders[i], which must be a live broker when the snapshot is written
// (kerr.InvalidReplicaAssignment otherwise). Storage is S3, so a leader is all a partition
// needs; replicas beyond it have nothing to hold.
func (s *Store) CreateTopicAssigned(ctx context.Context, name string, leaders []int32, configs map[string]string) error {
	if leaders == nil {
		leaders = []int32{}
	}
	return s.createTopic(ctx, name, int32(len(leaders)), leaders, configs)
}

// createTopic creates name with partitions led by leaders, or, when leaders is nil, by the
// least-loaded live brokers.
func (s *Store) createTopic(ctx context.Context, name string, partitions int32, leaders []int32, configs map[string]string) error {
	if err := ValidateTopicName(name); err != nil {
		return err
	}
	if partitions < 1 || partitions > MaxPartitionsPerTopic {
		return fmt.Errorf("topic %q: %d partitions, must be 1 to %d: %w", name, partitions, MaxPartitionsPerTopic, kerr.InvalidPartitions)
	}
	for k, v := range configs {
		if err := ValidateTopicConfig(k, v); err != nil {
			return err
		}
	}
	live, err := s.LiveBrokers(ctx)
	if err != nil {
		return err
	}
	for i, l := range leaders {
		if !hasBroker(live, l) {
			return fmt.Errorf("topic %q: broker %d, leader of partition %d in the assignment, is not a live broker: %w", name, l, i, kerr.InvalidReplicaAssignment)
		}
	}
	_, err = s.Update(ctx, func(snap *Snapshot) error {
		if snap.Topic(name) != nil {
			return fmt.Errorf("topic %q: %w", name, kerr.TopicAlreadyExists)
		}
		brokers := live
		if len(brokers) == 0 {
			brokers = snap.Brokers
		}
		if len(brokers) == 0 {
			return fmt.Errorf("topic %q: no live broker to lead its partitions: %w", name, kerr.InvalidReplicationFactor)
		}
		load := map[int32]int{}
		for _, b := range brokers {
			load[b.NodeID] = 0
		}
		for _, t := range snap.Topics {
			for _, p := range t.Partitions {
				if _, ok := load[p.Leader]; ok {
					load[p.Leader]++
				}
			}
		}
		t := Topic{Name: name, ID: newTopicID(), Partitions: make([]Partition, partitions)}
		if len(configs) > 0 {
			t.Configs = make(map[string]string, len(configs))
			for k, v := range configs {
				t.Configs[k] = v
			}
		}
		for i := range t.Partitions {
			var leader int32
			if leaders != nil {
				leader = leaders[i]
			} else {
				leader = leastLoaded(brokers, load)
				load[leader]++
			}
			t.Partitions[i] = Partition{ID: int32(i), Leader: leader, LeaderEpoch: 0}
		}
		snap.Topics = append(snap.Topics, t)
		return nil
	})
	return err
}

func hasBroker(brokers []Broker, id int32) bool {
	for _, b := range brokers {
		if b.NodeID == id {
			return true
		}
	}
	return false
}

// DeleteTopic removes a topic from the snapshot and, in the same transaction, its
// partition states (so a topic later created with the same name starts empty). Its S3
// objects are left for retention to remove (objects are shared by partitions).
func (s *Store) DeleteTopic(ctx context.Context, name string) error {
	_, err := s.update(ctx, func(snap *Snapshot) error {
		for i := range snap.Topics {
			if snap.Topics[i].Name == name {
				snap.Topics = append(snap.Topics[:i], snap.Topics[i+1:]...)
				return nil
			}
		}
		return fmt.Errorf("topic %q: %w", name, kerr.UnknownTopicOrPartition)
	}, func(*Snapshot) []clientv3.Op {
		return []clientv3.Op{clientv3.OpDelete(s.keys.Partitions()+name+"/", clientv3.WithPrefix())}
	})
	return err
}

func newTopicID() [16]byte {
	for {
		var id [16]byte
		if _, err := rand.Read(id[:]); err != nil {
			panic(err)
		}
		if id != [16]byte{} {
			return id
		}
	}
}

// CreatePartitions grows a topic to total partitions (additive only), the new ones led by
// the least-loaded live brokers. Errors: kerr.UnknownTopicOrPartition, kerr.InvalidPartitions
// (not more than now, or over the limit), kerr.RequestTimedOut.
func (s *Store) CreatePartitions(ctx context.Context, name string, total int32) error {
	live, err := s.LiveBrokers(ctx)
	if err != nil {
		return err
	}
	_, err = s.Update(ctx, func(snap *Snapshot) error {
		t := snap.Topic(name)
		if t == nil {
			return fmt.Errorf("topic %q: %w", name, kerr.UnknownTopicOrPartition)
		}
		if int(total) <= len(t.Partitions) || total > MaxPartitionsPerTopic {
			return fmt.Errorf("topic %q has %d partitions; asked for %d (must be more, at most %d): %w", name, len(t.Partitions), total, MaxPartitionsPerTopic, kerr.InvalidPartitions)
		}
		brokers := live
		if len(brokers) == 0 {
			brokers = snap.Brokers
		}
		if len(brokers) == 0 {
			return fmt.Errorf("topic %q: no live broker: %w", name, kerr.InvalidReplicationFactor)
		}
		load := map[int32]int{}
		for _, b := range brokers {
			load[b.NodeID] = 0
		}
		for _, tt := range snap.Topics {
			for _, p := range tt.Partitions {
				if _, ok := load[p.Leader]; ok {
					load[p.Leader]++
				}
			}
		}
		for i := int32(len(t.Partitions)); i < total; i++ {
			leader := leastLoaded(brokers, load)
			load[leader]++
			t.Partitions = append(t.Partitions, Partition{ID: i, Leader: leader})
		}
		return nil
	})
	return err
}
