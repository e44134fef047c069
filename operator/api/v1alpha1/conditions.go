package v1alpha1

// Condition types reported in status.conditions. Types and reasons are CamelCase, as
// metav1.Condition requires.
const (
	// ConditionReady is True when every object the resource asks for exists and is healthy.
	ConditionReady = "Ready"
	// ConditionEtcdSnapshotAccess is True when the operator's S3 write preflight for etcd
	// snapshots succeeded.
	ConditionEtcdSnapshotAccess = "EtcdSnapshotAccess"
	// ConditionPublished is True when the topic is part of the metadata snapshot in etcd.
	ConditionPublished = "Published"
)

// Condition types of a KafscaleCluster besides Ready and EtcdSnapshotAccess.
const (
	// ConditionEtcdAvailable is True when the cluster's etcd answered the operator.
	ConditionEtcdAvailable = "EtcdAvailable"
	// ConditionBrokersReady is True when every desired broker pod is ready.
	ConditionBrokersReady = "BrokersReady"
	// ConditionEtcdSnapshotScheduled is True when the snapshot CronJob exists; False
	// (OperatorImageUnknown) when the operator does not know the image to run it with.
	ConditionEtcdSnapshotScheduled = "EtcdSnapshotScheduled"
	// ConditionS3Credentials is set only when spec.s3.credentialsSecretRef names a Secret:
	// True when it holds a complete key pair, False (SecretNotFound, SecretKeysMissing) with
	// a message naming the keys expected.
	ConditionS3Credentials = "S3Credentials"
)
