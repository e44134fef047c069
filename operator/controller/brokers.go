package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kafscale/kafscale/operator/api/v1alpha1"
	"github.com/kafscale/kafscale/operator/config"
)

// Ports of broker containers and Services. The ServiceMonitor of the chart scrapes the port
// named "metrics" of Services labelled part-of=kafscale, component=broker.
const (
	kafkaPort   = 9092
	metricsPort = 9093
	// controlPort serves the broker's control-plane gRPC (Drain, Status); the operator
	// dials it on the pod IP.
	controlPort = 9094

	// InputHashAnnotation on the broker pod template changes, and so rolls the pods, only
	// when something the pods are built from changes.
	InputHashAnnotation = "kafscale.io/input-hash"

	// SpecReplicasAnnotation on the broker Deployment records the spec.brokers.replicas the
	// operator last applied. The operator writes the Deployment's replicas only when the
	// spec's count differs from it, so a `kubectl scale` of the Deployment stays until the
	// spec changes.
	SpecReplicasAnnotation = "kafscale.io/spec-replicas"

	// restartedAtAnnotation is what `kubectl rollout restart` puts on a pod template; the
	// operator keeps it, so a restart it did not start is not undone halfway.
	restartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"
)

// BrokerInputs is what broker objects are built from besides the cluster itself.
type BrokerInputs struct {
	Config        *config.Operator
	EtcdEndpoints []string
	// EnvHash is a digest of the broker-env ConfigMap's data, so a change rolls the brokers.
	EnvHash string
}

// brokerLabels are the labels of every broker object; brokerSelector the subset that
// selects the pods.
func brokerLabels(c *v1alpha1.KafscaleCluster) map[string]string {
	l := brokerSelector(c)
	l["app.kubernetes.io/part-of"] = "kafscale"
	l["app.kubernetes.io/managed-by"] = "kafscale-operator"
	// The short label the operations guide selects brokers by (`-l app=kafscale-broker`); not
	// part of the selector, which is immutable on existing Deployments.
	l["app"] = "kafscale-broker"
	return l
}

func brokerSelector(c *v1alpha1.KafscaleCluster) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":      "kafscale-broker",
		"app.kubernetes.io/instance":  c.Name,
		"app.kubernetes.io/component": "broker",
	}
}

// BrokerName is the name of the broker Deployment, PDB and HPA, and of the client Service.
func BrokerName(c *v1alpha1.KafscaleCluster) string { return c.Name + "-broker" }

// BrokerHeadlessName is the name of the headless Service (per-pod DNS, metrics scraping).
func BrokerHeadlessName(c *v1alpha1.KafscaleCluster) string { return c.Name + "-broker-headless" }

func desiredReplicas(c *v1alpha1.KafscaleCluster) int32 {
	if c.Spec.Brokers.Replicas != nil {
		return *c.Spec.Brokers.Replicas
	}
	return 3
}

func advertisedPort(c *v1alpha1.KafscaleCluster) int32 {
	if c.Spec.Brokers.AdvertisedPort != 0 {
		return c.Spec.Brokers.AdvertisedPort
	}
	return kafkaPort
}

// brokerEnv is the broker container's environment from the cluster spec. It never holds a
// credential value: S3 keys are secretKeyRefs.
func brokerEnv(c *v1alpha1.KafscaleCluster, in BrokerInputs) []corev1.EnvVar {
	env := []corev1.EnvVar{
		{Name: "KAFSCALE_CLUSTER_NAMESPACE", Value: c.Namespace},
		{Name: "KAFSCALE_CLUSTER_NAME", Value: c.Name},
		{Name: "KAFSCALE_ETCD_ENDPOINTS", Value: strings.Join(in.EtcdEndpoints, ",")},
		// A Deployment gives its pods no ordinal: each broker claims a free node id in etcd.
		{Name: "KAFSCALE_BROKER_ID", Value: "auto"},
		{Name: "KAFSCALE_BROKER_ADDR", Value: ":" + strconv.Itoa(kafkaPort)},
		{Name: "KAFSCALE_METRICS_ADDR", Value: ":" + strconv.Itoa(metricsPort)},
		{Name: "KAFSCALE_BROKER_PORT", Value: strconv.Itoa(int(advertisedPort(c)))},
		{Name: "KAFSCALE_CONTROL_ADDR", Value: ":" + strconv.Itoa(controlPort)},
		// Published in the broker's registration: how the operator finds a pod's broker.
		{Name: "KAFSCALE_POD_NAME", ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"},
		}},
	}
	if h := c.Spec.Brokers.AdvertisedHost; h != "" {
		env = append(env, corev1.EnvVar{Name: "KAFSCALE_BROKER_HOST", Value: h})
	} else {
		env = append(env, corev1.EnvVar{Name: "KAFSCALE_BROKER_HOST", ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"},
		}})
	}
	s3 := c.Spec.S3
	add := func(name, value string) {
		if value != "" {
			env = append(env, corev1.EnvVar{Name: name, Value: value})
		}
	}
	add("KAFSCALE_S3_BUCKET", s3.Bucket)
	add("KAFSCALE_S3_REGION", s3.Region)
	add("KAFSCALE_S3_ENDPOINT", s3.Endpoint)
	add("KAFSCALE_S3_PATH_STYLE", strconv.FormatBool(s3.PathStyle))
	add("KAFSCALE_S3_KMS_KEY_ID", s3.KMSKeyARN)
	add("KAFSCALE_S3_READ_BUCKET", s3.ReadBucket)
	add("KAFSCALE_S3_READ_REGION", s3.ReadRegion)
	add("KAFSCALE_S3_READ_ENDPOINT", s3.ReadEndpoint)
	// The broker reads KAFSCALE_S3_ACCESS_KEY/_SECRET_KEY first and falls back to the AWS
	// chain, which reads AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY: either pair in the Secret works.
	env = append(env, s3CredentialEnv(s3.CredentialsSecretRef)...)
	cfg := c.Spec.Config
	if cfg.SegmentBytes != nil {
		add("KAFSCALE_SEGMENT_BYTES", strconv.FormatInt(*cfg.SegmentBytes, 10))
	}
	if cfg.FlushIntervalMs != nil {
		add("KAFSCALE_FLUSH_INTERVAL_MS", strconv.Itoa(int(*cfg.FlushIntervalMs)))
	}
	if cfg.CacheBytes != nil {
		add("KAFSCALE_CACHE_BYTES", strconv.FormatInt(*cfg.CacheBytes, 10))
	}
	if cfg.ReadaheadSegments != nil {
		add("KAFSCALE_READAHEAD_SEGMENTS", strconv.Itoa(int(*cfg.ReadaheadSegments)))
	}
	if cfg.FlushParallelism != nil {
		add("KAFSCALE_FLUSH_PARALLELISM", strconv.Itoa(int(*cfg.FlushParallelism)))
	}
	if cfg.MaxInflightRequestBytes != nil {
		add("KAFSCALE_MAX_INFLIGHT_REQUEST_BYTES", strconv.FormatInt(*cfg.MaxInflightRequestBytes, 10))
	}
	if cfg.ProduceSyncFlush != nil {
		add("KAFSCALE_PRODUCE_SYNC_FLUSH", strconv.FormatBool(*cfg.ProduceSyncFlush))
	}
	if cfg.StartupTimeoutSec != nil {
		add("KAFSCALE_STARTUP_TIMEOUT_SEC", strconv.Itoa(int(*cfg.StartupTimeoutSec)))
	}
	if cfg.AllowAdminAPIs != nil {
		add("KAFSCALE_ALLOW_ADMIN_APIS", strconv.FormatBool(*cfg.AllowAdminAPIs))
	}
	// Map iteration above is unordered; a stable order keeps the pod template (and its
	// hash) stable.
	sortEnv(env)
	return env
}

func sortEnv(env []corev1.EnvVar) {
	for i := 1; i < len(env); i++ {
		for j := i; j > 0 && env[j].Name < env[j-1].Name; j-- {
			env[j], env[j-1] = env[j-1], env[j]
		}
	}
}

func restrictedContainerSecurity() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// BrokerDeployment builds the broker Deployment. With autoscaling the replica count is left
// unset so the HPA owns it.
func BrokerDeployment(c *v1alpha1.KafscaleCluster, in BrokerInputs) *appsv1.Deployment {
	container := corev1.Container{
		Name:            "broker",
		Image:           in.Config.BrokerImage,
		ImagePullPolicy: in.Config.BrokerImagePullPolicy,
		Env:             brokerEnv(c, in),
		Ports: []corev1.ContainerPort{
			{Name: "kafka", ContainerPort: kafkaPort, Protocol: corev1.ProtocolTCP},
			{Name: "metrics", ContainerPort: metricsPort, Protocol: corev1.ProtocolTCP},
			{Name: "control", ContainerPort: controlPort, Protocol: corev1.ProtocolTCP},
		},
		Lifecycle: &corev1.Lifecycle{PreStop: brokerPreStop(in.Config)},
		LivenessProbe: &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("metrics")}},
			PeriodSeconds:    10,
			FailureThreshold: 3,
		},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromString("metrics")}},
			PeriodSeconds:    5,
			FailureThreshold: 2,
		},
		Resources:       c.Spec.Brokers.Resources,
		SecurityContext: restrictedContainerSecurity(),
		VolumeMounts:    []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
	}
	if in.Config.BrokerEnvConfigMap != "" {
		// envFrom comes first in precedence order: env set from the spec wins.
		container.EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: in.Config.BrokerEnvConfigMap},
		}}}
	}
	pod := corev1.PodSpec{
		Containers:                    []corev1.Container{container},
		TerminationGracePeriodSeconds: ptr.To(int64(config.BrokerTerminationGrace / time.Second)),
		AutomountServiceAccountToken:  ptr.To(false),
		// Service links would put a variable per Service of the namespace into the
		// environment: KAFSCALE_BROKER_PORT_9092_TCP and the like for the cluster's own
		// Services, which the broker reports as unknown settings at every start. Every
		// address the broker needs is set explicitly.
		EnableServiceLinks: ptr.To(false),
		// Ready only once no other broker of the cluster drains (DrainTurnGate).
		ReadinessGates: []corev1.PodReadinessGate{{ConditionType: DrainTurnGate}},
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   ptr.To(true),
			RunAsUser:      ptr.To[int64](65532),
			RunAsGroup:     ptr.To[int64](65532),
			FSGroup:        ptr.To[int64](65532),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
			MaxSkew:           1,
			TopologyKey:       "kubernetes.io/hostname",
			WhenUnsatisfiable: corev1.ScheduleAnyway,
			LabelSelector:     &metav1.LabelSelector{MatchLabels: brokerSelector(c)},
		}},
	}
	for _, s := range in.Config.ImagePullSecrets {
		pod.ImagePullSecrets = append(pod.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: BrokerName(c), Namespace: c.Namespace, Labels: brokerLabels(c)},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: brokerSelector(c)},
			// One broker drains at a time: a new broker is Ready (and the next old one
			// deleted) only once no other broker of the cluster is terminating, through
			// the pods' readiness gate (DrainTurnGate). minReadySeconds must be 0 and is
			// set so explicitly: a Deployment made by an older operator carries 65 s,
			// which would only slow every roll down now that the gate orders the drains.
			MinReadySeconds: 0,
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxUnavailable: ptr.To(intstr.FromInt32(0)),
					MaxSurge:       ptr.To(intstr.FromInt32(1)),
				},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: brokerLabels(c)},
				Spec:       pod,
			},
		},
	}
	if c.Spec.Brokers.Autoscaling == nil {
		d.Spec.Replicas = ptr.To(desiredReplicas(c))
	}
	d.Spec.Template.Annotations = map[string]string{InputHashAnnotation: inputHash(pod, in.EnvHash)}
	return d
}

// brokerPreStop runs `<broker binary> drain-wait` before the kubelet sends SIGTERM: it waits,
// bounded by KAFSCALE_OPERATOR_BROKER_DRAIN_WAIT_SEC, until the operator (which watches
// terminating broker pods) has drained the broker through its control service. The image is
// FROM scratch, so the hook is the broker binary itself, never a shell. When the operator
// is down the wait runs out and SIGTERM's own drain follows, inside the grace period.
func brokerPreStop(cfg *config.Operator) *corev1.LifecycleHandler {
	bin, wait := cfg.BrokerBinary, cfg.BrokerDrainWait
	if bin == "" {
		bin = config.DefaultBrokerBinary
	}
	if wait <= 0 {
		wait = config.DefaultBrokerDrainWait
	}
	return &corev1.LifecycleHandler{Exec: &corev1.ExecAction{
		Command: []string{bin, "drain-wait", "-timeout", wait.String()},
	}}
}

// inputHash digests everything the pods are built from.
func inputHash(pod corev1.PodSpec, envHash string) string {
	b, _ := json.Marshal(pod) // a PodSpec always encodes
	h := sha256.New()
	h.Write(b)
	h.Write([]byte(envHash))
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// HashData digests a ConfigMap's data in a stable order.
func HashData(data map[string]string) string {
	b, _ := json.Marshal(data) // encoding/json sorts map keys
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// BrokerServices builds the headless Service (kafka and metrics ports, what the chart's
// ServiceMonitor scrapes) and the client Service shaped by spec.brokers.service (kafka only,
// so brokers are not scraped twice).
func BrokerServices(c *v1alpha1.KafscaleCluster) (headless, client *corev1.Service) {
	headless = &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: BrokerHeadlessName(c), Namespace: c.Namespace, Labels: brokerLabels(c)},
		Spec: corev1.ServiceSpec{
			ClusterIP:                corev1.ClusterIPNone,
			Selector:                 brokerSelector(c),
			PublishNotReadyAddresses: true,
			Ports: []corev1.ServicePort{
				{Name: "kafka", Port: kafkaPort, TargetPort: intstr.FromString("kafka"), Protocol: corev1.ProtocolTCP},
				{Name: "metrics", Port: metricsPort, TargetPort: intstr.FromString("metrics"), Protocol: corev1.ProtocolTCP},
			},
		},
	}
	svc := c.Spec.Brokers.Service
	typ := svc.Type
	if typ == "" {
		typ = corev1.ServiceTypeClusterIP
	}
	labels := brokerLabels(c)
	labels["kafscale.io/service"] = "client"
	client = &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: BrokerName(c), Namespace: c.Namespace, Labels: labels, Annotations: svc.Annotations},
		Spec: corev1.ServiceSpec{
			Type:     typ,
			Selector: brokerSelector(c),
			Ports: []corev1.ServicePort{
				{Name: "kafka", Port: advertisedPort(c), TargetPort: intstr.FromString("kafka"), Protocol: corev1.ProtocolTCP},
			},
		},
	}
	if typ == corev1.ServiceTypeLoadBalancer {
		client.Spec.LoadBalancerSourceRanges = svc.LoadBalancerSourceRanges
	}
	return headless, client
}

// BrokerPDB lets at most one broker be disrupted at a time.
func BrokerPDB(c *v1alpha1.KafscaleCluster) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: BrokerName(c), Namespace: c.Namespace, Labels: brokerLabels(c)},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(1)),
			Selector:       &metav1.LabelSelector{MatchLabels: brokerSelector(c)},
		},
	}
}

// BrokerReplicas decides what the operator writes to the broker Deployment's replicas; nil
// leaves them as they are. cur is the Deployment as stored (nil before it exists);
// outsideHPA says a HorizontalPodAutoscaler the operator did not make targets it.
//   - spec.brokers.autoscaling set: the operator's own HPA owns the count: nil.
//   - an outside HPA (`kubectl autoscale`): it owns the count: nil.
//   - otherwise spec.brokers.replicas, when the Deployment is new or the count differs from
//     the one last applied (SpecReplicasAnnotation); nil when the spec has not changed, so a
//     `kubectl scale` of the Deployment stays.
func BrokerReplicas(c *v1alpha1.KafscaleCluster, cur *appsv1.Deployment, outsideHPA bool) *int32 {
	if c.Spec.Brokers.Autoscaling != nil || outsideHPA {
		return nil
	}
	want := desiredReplicas(c)
	if cur == nil || cur.CreationTimestamp.IsZero() || cur.Annotations[SpecReplicasAnnotation] != strconv.Itoa(int(want)) {
		return &want
	}
	return nil
}

// TargetsBrokers reports whether an HPA scales the cluster's broker Deployment.
func TargetsBrokers(c *v1alpha1.KafscaleCluster, hpa *autoscalingv2.HorizontalPodAutoscaler) bool {
	ref := hpa.Spec.ScaleTargetRef
	group, _, _ := strings.Cut(ref.APIVersion, "/")
	return ref.Kind == "Deployment" && ref.Name == BrokerName(c) && (group == "apps" || ref.APIVersion == "")
}

// BrokerHPA builds the HPA, or nil when autoscaling is off.
func BrokerHPA(c *v1alpha1.KafscaleCluster) *autoscalingv2.HorizontalPodAutoscaler {
	a := c.Spec.Brokers.Autoscaling
	if a == nil {
		return nil
	}
	target := a.TargetCPUUtilizationPercentage
	if target == 0 {
		target = 70
	}
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: BrokerName(c), Namespace: c.Namespace, Labels: brokerLabels(c)},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: BrokerName(c)},
			MinReplicas:    a.MinReplicas,
			MaxReplicas:    a.MaxReplicas,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{
					Name:   corev1.ResourceCPU,
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(target)},
				},
			}},
		},
	}
}
