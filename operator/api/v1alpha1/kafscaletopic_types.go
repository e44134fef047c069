package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// KafscaleTopicSpec is the desired state of one topic.
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.partitions) || self.partitions >= oldSelf.partitions",message="partitions can only grow"
// +kubebuilder:validation:XValidation:rule="self.clusterRef == oldSelf.clusterRef",message="clusterRef is immutable"
type KafscaleTopicSpec struct {
	// ClusterRef is the name of the KafscaleCluster, in the same namespace, that holds the
	// topic.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	ClusterRef string `json:"clusterRef"`

	// TopicName is the Kafka topic name. Empty means metadata.name.
	// +kubebuilder:validation:MaxLength=249
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9._-]+$`
	// +optional
	TopicName string `json:"topicName,omitempty"`

	// Partitions is the partition count. It can grow, never shrink.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	// +kubebuilder:default=1
	// +optional
	Partitions int32 `json:"partitions,omitempty"`

	// Retention bounds how long and how much data the topic keeps.
	// +optional
	Retention RetentionSpec `json:"retention,omitempty"`

	// Configs are further Kafka topic configs (cleanup.policy, max.message.bytes, ...).
	// +optional
	Configs map[string]string `json:"configs,omitempty"`
}

// RetentionSpec bounds a topic's data. -1 means unlimited, as in Kafka.
type RetentionSpec struct {
	// Ms is retention.ms.
	// +kubebuilder:validation:Minimum=-1
	// +optional
	Ms *int64 `json:"ms,omitempty"`

	// Bytes is retention.bytes, per partition.
	// +kubebuilder:validation:Minimum=-1
	// +optional
	Bytes *int64 `json:"bytes,omitempty"`
}

// KafscaleTopicStatus is the observed state of a topic.
type KafscaleTopicStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Partitions is the partition count published in the metadata snapshot.
	// +optional
	Partitions int32 `json:"partitions,omitempty"`

	// PartitionLeaders lists each published partition with its leader broker (-1: none yet)
	// and leader epoch, as in the metadata snapshot, and its offsets once written.
	// +listType=atomic
	// +optional
	PartitionLeaders []PartitionLeader `json:"partitionLeaders,omitempty"`

	// Conditions: Ready, Published.
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`
}

// KafscaleTopic is one Kafka topic of a KafscaleCluster.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=kst,categories=kafscale
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.spec.clusterRef`
// +kubebuilder:printcolumn:name="Partitions",type=integer,JSONPath=`.spec.partitions`
// +kubebuilder:printcolumn:name="Retention ms",type=integer,JSONPath=`.spec.retention.ms`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type KafscaleTopic struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec KafscaleTopicSpec `json:"spec"`
	// +optional
	Status KafscaleTopicStatus `json:"status,omitempty"`
}

// KafscaleTopicList is a list of KafscaleTopics.
// +kubebuilder:object:root=true
type KafscaleTopicList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []KafscaleTopic `json:"items"`
}

// PartitionLeader is one partition's leadership as published in the metadata snapshot.
type PartitionLeader struct {
	// Partition is the partition id.
	Partition int32 `json:"partition"`
	// Leader is the leading broker's NodeID, -1 when no broker leads it yet.
	Leader int32 `json:"leader"`
	// LeaderEpoch is the partition's leader epoch.
	LeaderEpoch int32 `json:"leaderEpoch"`
	// LogStartOffset is the first readable offset, from the partition's state in etcd
	// (absent before the partition's first write).
	// +optional
	LogStartOffset *int64 `json:"logStartOffset,omitempty"`
	// HighWatermark is the next offset to be written (absent before the first write).
	// +optional
	HighWatermark *int64 `json:"highWatermark,omitempty"`
}
