package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// KafscaleClusterSpec is the desired state of one KafScale cluster: its brokers, the S3
// buckets holding its log segments and the etcd holding its metadata.
type KafscaleClusterSpec struct {
	// Brokers describes the broker Deployment and its Service.
	// +kubebuilder:default={}
	// +optional
	Brokers BrokerSpec `json:"brokers,omitempty"`

	// S3 is where log segments are written and read.
	// +required
	S3 S3Spec `json:"s3"`

	// Etcd is where metadata and consumer offsets live. Empty endpoints mean: use the
	// operator's KAFSCALE_OPERATOR_ETCD_ENDPOINTS, or else a managed etcd.
	// +optional
	Etcd EtcdSpec `json:"etcd,omitempty"`

	// Config holds broker tuning passed to every broker as KAFSCALE_* settings.
	// +optional
	Config ClusterConfig `json:"config,omitempty"`
}

// BrokerSpec describes the brokers of a cluster.
type BrokerSpec struct {
	// Replicas is the number of brokers. The operator applies it to the broker Deployment
	// when it changes (also through `kubectl scale kafscalecluster`); a `kubectl scale` of the
	// Deployment itself stays until this value changes again, and while a
	// HorizontalPodAutoscaler the operator did not make targets the Deployment, the operator
	// leaves its replicas alone.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:default=3
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// Resources are the broker container's requests and limits.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// AdvertisedHost is the host brokers advertise to clients. Empty means the pod's
	// Service DNS name.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	AdvertisedHost string `json:"advertisedHost,omitempty"`

	// AdvertisedPort is the port brokers advertise to clients.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +kubebuilder:default=9092
	// +optional
	AdvertisedPort int32 `json:"advertisedPort,omitempty"`

	// Service configures the Service in front of the brokers.
	// +kubebuilder:default={}
	// +optional
	Service BrokerServiceSpec `json:"service,omitempty"`

	// Autoscaling, when set, makes a HorizontalPodAutoscaler for the brokers; the operator
	// then leaves the Deployment's replica count to it.
	// +optional
	Autoscaling *BrokerAutoscalingSpec `json:"autoscaling,omitempty"`
}

// BrokerAutoscalingSpec configures the brokers' HorizontalPodAutoscaler.
// +kubebuilder:validation:XValidation:rule="!has(self.minReplicas) || self.minReplicas <= self.maxReplicas",message="minReplicas must not exceed maxReplicas"
type BrokerAutoscalingSpec struct {
	// MinReplicas is the lower bound. Empty means 1.
	// +kubebuilder:validation:Minimum=1
	// +optional
	MinReplicas *int32 `json:"minReplicas,omitempty"`

	// MaxReplicas is the upper bound.
	// +kubebuilder:validation:Minimum=1
	// +required
	MaxReplicas int32 `json:"maxReplicas"`

	// TargetCPUUtilizationPercentage is the average CPU utilisation the HPA aims for.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +kubebuilder:default=70
	// +optional
	TargetCPUUtilizationPercentage int32 `json:"targetCPUUtilizationPercentage,omitempty"`
}

// BrokerServiceSpec configures the broker Service.
// +kubebuilder:validation:XValidation:rule="!has(self.loadBalancerSourceRanges) || size(self.loadBalancerSourceRanges) == 0 || self.type == 'LoadBalancer'",message="loadBalancerSourceRanges needs type LoadBalancer"
type BrokerServiceSpec struct {
	// Type is the Service type.
	// +kubebuilder:validation:Enum=ClusterIP;NodePort;LoadBalancer
	// +kubebuilder:default=ClusterIP
	// +optional
	Type corev1.ServiceType `json:"type,omitempty"`

	// Annotations are added to the Service (cloud load balancer settings, for example).
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`

	// LoadBalancerSourceRanges limits which client CIDRs reach a LoadBalancer Service.
	// +listType=atomic
	// +optional
	LoadBalancerSourceRanges []string `json:"loadBalancerSourceRanges,omitempty"`
}

// S3Spec says where log segments live. Writes always go to the primary bucket; reads try
// ReadBucket first and fall back to the primary.
// +kubebuilder:validation:XValidation:rule="!has(self.readRegion) || has(self.readBucket)",message="readRegion needs readBucket"
// +kubebuilder:validation:XValidation:rule="!has(self.readEndpoint) || has(self.readBucket)",message="readEndpoint needs readBucket"
type S3Spec struct {
	// Bucket is the primary bucket.
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=63
	// +required
	Bucket string `json:"bucket"`

	// Region is the primary bucket's region.
	// +kubebuilder:validation:MinLength=1
	// +required
	Region string `json:"region"`

	// Endpoint overrides the S3 endpoint (an S3-compatible server, for example).
	// +kubebuilder:validation:Pattern=`^https?://`
	// +optional
	Endpoint string `json:"endpoint,omitempty"`

	// PathStyle addresses buckets by path instead of by virtual host.
	// +optional
	PathStyle bool `json:"pathStyle,omitempty"`

	// KMSKeyARN encrypts objects with this KMS key (SSE-KMS).
	// +kubebuilder:validation:Pattern=`^arn:`
	// +optional
	KMSKeyARN string `json:"kmsKeyArn,omitempty"`

	// ReadBucket is a replica bucket that reads try first.
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=63
	// +optional
	ReadBucket string `json:"readBucket,omitempty"`

	// ReadRegion is the read bucket's region. Empty means Region.
	// +optional
	ReadRegion string `json:"readRegion,omitempty"`

	// ReadEndpoint is the read bucket's endpoint. Empty means Endpoint.
	// +kubebuilder:validation:Pattern=`^https?://`
	// +optional
	ReadEndpoint string `json:"readEndpoint,omitempty"`

	// CredentialsSecretRef names a Secret in the cluster's namespace holding
	// KAFSCALE_S3_ACCESS_KEY and KAFSCALE_S3_SECRET_KEY (or AWS_ACCESS_KEY_ID and
	// AWS_SECRET_ACCESS_KEY; the first pair wins when both are complete). Empty means the
	// pod's own identity (IRSA, instance profile).
	// +optional
	CredentialsSecretRef *corev1.LocalObjectReference `json:"credentialsSecretRef,omitempty"`
}

// EtcdSpec says where the cluster's metadata lives.
type EtcdSpec struct {
	// Endpoints are etcd client URLs.
	// +listType=atomic
	// +kubebuilder:validation:items:Pattern=`^https?://`
	// +optional
	Endpoints []string `json:"endpoints,omitempty"`

	// Storage sizes the volumes of the managed etcd (used only when no endpoints resolve).
	// +kubebuilder:default={}
	// +optional
	Storage EtcdStorageSpec `json:"storage,omitempty"`
}

// EtcdStorageSpec sizes each managed etcd member's PersistentVolumeClaim.
type EtcdStorageSpec struct {
	// StorageClassName of the claims. Empty means the cluster's default class.
	// +optional
	StorageClassName *string `json:"storageClassName,omitempty"`

	// Size of each member's volume.
	// +kubebuilder:default="10Gi"
	// +optional
	Size *resource.Quantity `json:"size,omitempty"`
}

// ClusterConfig holds broker tuning.
type ClusterConfig struct {
	// SegmentBytes flushes a partition's buffer to S3 once it holds this many bytes
	// (KAFSCALE_SEGMENT_BYTES).
	// +kubebuilder:validation:Minimum=1024
	// +optional
	SegmentBytes *int64 `json:"segmentBytes,omitempty"`

	// FlushIntervalMs flushes buffers at least this often (KAFSCALE_FLUSH_INTERVAL_MS).
	// +kubebuilder:validation:Minimum=1
	// +optional
	FlushIntervalMs *int32 `json:"flushIntervalMs,omitempty"`

	// CacheBytes is the size of each broker's fetch cache (KAFSCALE_CACHE_BYTES).
	// +kubebuilder:validation:Minimum=0
	// +optional
	CacheBytes *int64 `json:"cacheBytes,omitempty"`

	// ReadaheadSegments is how many segments a fetch reads ahead
	// (KAFSCALE_READAHEAD_SEGMENTS).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=64
	// +optional
	ReadaheadSegments *int32 `json:"readaheadSegments,omitempty"`

	// FlushParallelism is how many objects each broker uploads to S3 at once; up to twice as
	// many flushes are in flight, uploading or waiting for their etcd commit
	// (KAFSCALE_FLUSH_PARALLELISM).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=64
	// +optional
	FlushParallelism *int32 `json:"flushParallelism,omitempty"`

	// MaxInflightRequestBytes bounds the request bytes each broker has read and is handling,
	// all connections together; beyond it producers wait in TCP rather than in the broker's
	// memory (KAFSCALE_MAX_INFLIGHT_REQUEST_BYTES, like Kafka's queued.max.request.bytes).
	// +kubebuilder:validation:Minimum=1048576
	// +optional
	MaxInflightRequestBytes *int64 `json:"maxInflightRequestBytes,omitempty"`

	// ProduceSyncFlush answers acks>=1 produces only after their batch is in S3 and the
	// partition state is committed in etcd (KAFSCALE_PRODUCE_SYNC_FLUSH).
	// +optional
	ProduceSyncFlush *bool `json:"produceSyncFlush,omitempty"`

	// StartupTimeoutSec is how long a broker may take to reach S3 and etcd before it exits
	// (KAFSCALE_STARTUP_TIMEOUT_SEC).
	// +kubebuilder:validation:Minimum=1
	// +optional
	StartupTimeoutSec *int32 `json:"startupTimeoutSec,omitempty"`

	// AllowAdminAPIs lets clients create and delete topics and alter configs
	// (KAFSCALE_ALLOW_ADMIN_APIS).
	// +optional
	AllowAdminAPIs *bool `json:"allowAdminApis,omitempty"`
}

// KafscaleClusterStatus is the observed state of a cluster.
type KafscaleClusterStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// ReadyBrokers is the number of ready broker pods.
	// +optional
	ReadyBrokers int32 `json:"readyBrokers,omitempty"`

	// Replicas is the broker Deployment's replica count as it stands (after any
	// `kubectl scale` or HorizontalPodAutoscaler); the scale subresource reports it.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`

	// Selector selects the broker pods (label selector string), for an HPA that targets the
	// KafscaleCluster through its scale subresource.
	// +optional
	Selector string `json:"selector,omitempty"`

	// EtcdEndpoints are the endpoints the operator resolved for this cluster.
	// +listType=atomic
	// +optional
	EtcdEndpoints []string `json:"etcdEndpoints,omitempty"`

	// Conditions: Ready, EtcdAvailable, BrokersReady, EtcdSnapshotAccess, EtcdSnapshotScheduled,
	// S3Credentials.
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`
}

// KafscaleCluster is one KafScale cluster: stateless brokers over S3 and etcd.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.brokers.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:resource:shortName=ksc;kafscale,categories=kafscale
// +kubebuilder:printcolumn:name="Brokers",type=integer,JSONPath=`.spec.brokers.replicas`
// +kubebuilder:printcolumn:name="Ready Brokers",type=integer,JSONPath=`.status.readyBrokers`
// +kubebuilder:printcolumn:name="Bucket",type=string,JSONPath=`.spec.s3.bucket`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type KafscaleCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec KafscaleClusterSpec `json:"spec"`
	// +optional
	Status KafscaleClusterStatus `json:"status,omitempty"`
}

// KafscaleClusterList is a list of KafscaleClusters.
// +kubebuilder:object:root=true
type KafscaleClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []KafscaleCluster `json:"items"`
}
