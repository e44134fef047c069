// Package cluster reads what the console shows — brokers, topics, partitions, consumer
// groups and lag from etcd, health and throughput from the brokers' and the operator's
// metrics — into typed views. It only reads: its etcd access is an interface with Get alone.
//
// A value that could not be read is nil (JSON null) and the view says why in an error
// field; no number is ever guessed.
package cluster

import "time"

// Overview is the cluster at a glance.
type Overview struct {
	Namespace string `json:"namespace"`
	Cluster   string `json:"cluster"`
	// ClusterID and ControllerID come from the metadata snapshot; nil when etcd could not be
	// read or nothing was published yet.
	ClusterID    *string        `json:"clusterId"`
	ControllerID *int32         `json:"controllerId"`
	Etcd         EtcdStatus     `json:"etcd"`
	Brokers      []Broker       `json:"brokers"`
	Snapshot     SnapshotStatus `json:"snapshot"`
	Time         time.Time      `json:"time"`
}

// EtcdStatus says whether the console could read etcd just now.
type EtcdStatus struct {
	Reachable bool     `json:"reachable"`
	Endpoints []string `json:"endpoints"`
	Error     string   `json:"error,omitempty"`
	// Revision is etcd's revision at the read; nil when unreachable.
	Revision *int64 `json:"revision"`
}

// Broker is one broker as registered in etcd, listed in the metadata snapshot, or seen
// earlier by this console and gone since.
type Broker struct {
	NodeID int32  `json:"nodeId"`
	Host   string `json:"host"`
	Port   int32  `json:"port"`
	Rack   string `json:"rack,omitempty"`
	Pod    string `json:"pod,omitempty"`
	// Version is what the broker registered; nil for a broker that registers none.
	Version *string `json:"version"`
	// Live: its registration (held under an etcd lease) exists. nil when etcd is unreadable.
	Live *bool `json:"live"`
	// InMetadata: clients are sent to it (the metadata snapshot lists it).
	InMetadata bool `json:"inMetadata"`
	// GoneSince is when this console first saw it gone; nil while live.
	GoneSince *time.Time `json:"goneSince"`
	// MetricsURL is where its metrics were read; MetricsError why they could not be.
	MetricsURL   string `json:"metricsUrl,omitempty"`
	MetricsError string `json:"metricsError,omitempty"`
	// From its metrics; nil when unknown.
	DrainState         *string  `json:"drainState"` // serving, draining, drained
	S3Health           *string  `json:"s3Health"`   // healthy, degraded, unavailable
	ProduceRPS         *float64 `json:"produceRps"`
	FetchRPS           *float64 `json:"fetchRps"`
	ProducedBytesTotal *float64 `json:"producedBytesTotal"`
	FetchedBytesTotal  *float64 `json:"fetchedBytesTotal"`
}

// SnapshotStatus is the managed-etcd snapshot state from the operator's metrics.
type SnapshotStatus struct {
	// Configured: an operator metrics URL is set (KAFSCALE_CONSOLE_OPERATOR_METRICS_URL).
	Configured bool `json:"configured"`
	// Reachable: the operator's metrics were read just now.
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	// The operator exports the series only for clusters it snapshots (managed etcd), from
	// its leader; nil when absent.
	LastSuccess  *time.Time `json:"lastSuccess"`
	AgeSeconds   *float64   `json:"ageSeconds"`
	LastSchedule *time.Time `json:"lastSchedule"`
	AccessOK     *bool      `json:"accessOk"`
	// Failing: the S3 preflight fails, snapshots are scheduled but none ever succeeded, or
	// the newest is older than KAFSCALE_CONSOLE_SNAPSHOT_STALE_SEC. Reason says which.
	Failing *bool  `json:"failing"`
	Reason  string `json:"reason,omitempty"`
}

// Topics lists the topics; Topics is nil when etcd could not be read (Error says why).
type Topics struct {
	Topics []TopicSummary `json:"topics"`
	Error  string         `json:"error,omitempty"`
}

// TopicSummary is one row of the topic list.
type TopicSummary struct {
	Name       string `json:"name"`
	Partitions int    `json:"partitions"`
	// Records is the sum over partitions of high watermark − log start.
	Records int64 `json:"records"`
	// SizeBytes is the stored bytes where every partition's size is known, else nil.
	SizeBytes *int64 `json:"sizeBytes"`
	Configs   int    `json:"configs"`
}

// Topic is one topic with its partitions and configs. Found is false for a topic the
// metadata does not list.
type Topic struct {
	Name       string            `json:"name"`
	Found      bool              `json:"found"`
	ID         string            `json:"id,omitempty"`
	Configs    map[string]string `json:"configs"`
	Partitions []Partition       `json:"partitions"`
	Error      string            `json:"error,omitempty"`
}

// Partition is one partition's leadership and log state.
type Partition struct {
	ID          int32 `json:"id"`
	Leader      int32 `json:"leader"`
	LeaderEpoch int32 `json:"leaderEpoch"`
	// LogStart and HighWatermark are from the partition's state in etcd (0 and 0 for a
	// partition nothing was ever committed to).
	LogStart      int64 `json:"logStart"`
	HighWatermark int64 `json:"highWatermark"`
	// SizeBytes is the stored bytes the partition's index references; nil when part of it
	// is archived in S3 without a recorded size.
	SizeBytes *int64 `json:"sizeBytes"`
}

// Groups lists the consumer groups; Groups is nil when etcd could not be read.
type Groups struct {
	Groups []GroupSummary `json:"groups"`
	Error  string         `json:"error,omitempty"`
}

// GroupSummary is one row of the group list.
type GroupSummary struct {
	Name        string `json:"name"`
	State       string `json:"state"`
	Members     int    `json:"members"`
	Coordinator *int32 `json:"coordinator"`
	// Partitions counts those with a commit or an assignment; UnknownLag those among them
	// whose lag is unknown (nothing committed). TotalLag sums the known lags; nil when none
	// is known.
	Partitions int    `json:"partitions"`
	UnknownLag int    `json:"unknownLag"`
	TotalLag   *int64 `json:"totalLag"`
}

// Group is one consumer group as its coordinator stored it, with lag per partition.
type Group struct {
	GroupSummary
	Found        bool              `json:"found"`
	ProtocolType string            `json:"protocolType"`
	Protocol     string            `json:"protocol"`
	Generation   int32             `json:"generation"`
	UpdatedAt    *time.Time        `json:"updatedAt"`
	MemberList   []Member          `json:"memberList"`
	Offsets      []PartitionOffset `json:"offsets"`
	Error        string            `json:"error,omitempty"`
}

// Member is one group member and what it was assigned.
type Member struct {
	MemberID   string  `json:"memberId"`
	InstanceID *string `json:"instanceId"`
	ClientID   string  `json:"clientId"`
	ClientHost string  `json:"clientHost"`
	// Assignment is nil when it cannot be decoded (a protocol other than Kafka's consumer
	// protocol).
	Assignment []TopicPartitions `json:"assignment"`
}

// TopicPartitions names partitions of a topic.
type TopicPartitions struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

// PartitionOffset is a group's position in one partition. Committed and Lag are nil when
// nothing is committed; HighWatermark is nil when the topic is gone.
type PartitionOffset struct {
	Topic         string  `json:"topic"`
	Partition     int32   `json:"partition"`
	Committed     *int64  `json:"committed"`
	HighWatermark *int64  `json:"highWatermark"`
	Lag           *int64  `json:"lag"`
	Member        *string `json:"member"` // client id of the member assigned it, if any
}
