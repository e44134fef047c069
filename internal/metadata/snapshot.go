// Package metadata is the etcd schema shared by the operator, brokers, proxy and console:
// the key layout under /kafscale/<namespace>/<cluster>/ and the documents stored there.
//
// The metadata document is a whole snapshot (brokers, topics, partitions with leader and
// leader epoch, topic configs), published by one writer at a time with a compare-and-swap on
// its etcd revision. Per-partition log state lives under partitions/<topic>/<p> and is written
// only by the partition's leader, fenced by leader epoch.
package metadata

import "sort"

// Snapshot is the cluster metadata document stored at Keys.Metadata().
type Snapshot struct {
	// ClusterID is the Kafka cluster id returned in Metadata and DescribeCluster.
	ClusterID string `json:"clusterId"`
	// ControllerID is the NodeID advertised as the controller (-1 when none).
	ControllerID int32 `json:"controllerId"`
	// Brokers are the brokers clients may connect to, sorted by NodeID.
	Brokers []Broker `json:"brokers"`
	// Topics are sorted by name.
	Topics []Topic `json:"topics"`
}

// Broker is one broker's advertised address.
type Broker struct {
	NodeID int32  `json:"nodeId"`
	Host   string `json:"host"`
	Port   int32  `json:"port"`
	Rack   string `json:"rack,omitempty"`
}

// Topic is one topic with its partitions and configs.
type Topic struct {
	Name string `json:"name"`
	// ID is the topic UUID (Kafka topic id), 16 bytes, never all zero once created.
	ID         [16]byte          `json:"id"`
	Partitions []Partition       `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

// Partition is one partition's leadership. Only Leader may append to it, and only while
// its commits carry LeaderEpoch (see PartitionState).
type Partition struct {
	ID          int32 `json:"id"`
	Leader      int32 `json:"leader"`
	LeaderEpoch int32 `json:"leaderEpoch"`
}

// Topic returns the named topic, or nil.
func (s *Snapshot) Topic(name string) *Topic {
	i := sort.Search(len(s.Topics), func(i int) bool { return s.Topics[i].Name >= name })
	if i < len(s.Topics) && s.Topics[i].Name == name {
		return &s.Topics[i]
	}
	return nil
}

// Broker returns the broker with this NodeID, or nil.
func (s *Snapshot) Broker(id int32) *Broker {
	for i := range s.Brokers {
		if s.Brokers[i].NodeID == id {
			return &s.Brokers[i]
		}
	}
	return nil
}

// Partition returns the partition of a topic, or nil.
func (t *Topic) Partition(id int32) *Partition {
	if id < 0 || int(id) >= len(t.Partitions) || t.Partitions[id].ID != id {
		return nil
	}
	return &t.Partitions[id]
}

// Normalize sorts brokers and topics so lookups work and equal snapshots encode equally.
func (s *Snapshot) Normalize() {
	sort.Slice(s.Brokers, func(i, j int) bool { return s.Brokers[i].NodeID < s.Brokers[j].NodeID })
	sort.Slice(s.Topics, func(i, j int) bool { return s.Topics[i].Name < s.Topics[j].Name })
	for i := range s.Topics {
		p := s.Topics[i].Partitions
		sort.Slice(p, func(a, b int) bool { return p[a].ID < p[b].ID })
	}
}
