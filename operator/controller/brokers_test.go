package controller

import (
	"strconv"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kafscale/kafscale/operator/api/v1alpha1"
	"github.com/kafscale/kafscale/operator/config"
)

type clusterOption func(*v1alpha1.KafscaleCluster)

func newCluster(opts ...clusterOption) *v1alpha1.KafscaleCluster {
	c := &v1alpha1.KafscaleCluster{
		ObjectMeta: metav1.ObjectMeta{Name: "prod", Namespace: "kafscale"},
		Spec: v1alpha1.KafscaleClusterSpec{
			S3: v1alpha1.S3Spec{Bucket: "segments", Region: "eu-west-1"},
		},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

func withReplicas(n int32) clusterOption {
	return func(c *v1alpha1.KafscaleCluster) { c.Spec.Brokers.Replicas = ptr.To(n) }
}

func withCredentials(name string) clusterOption {
	return func(c *v1alpha1.KafscaleCluster) {
		c.Spec.S3.CredentialsSecretRef = &corev1.LocalObjectReference{Name: name}
	}
}

func testInputs() BrokerInputs {
	return BrokerInputs{
		Config: &config.Operator{
			BrokerImage: "ghcr.io/kafscale/broker:0.1.0", BrokerImagePullPolicy: corev1.PullIfNotPresent,
			BrokerEnvConfigMap: "kafscale-broker-env", ImagePullSecrets: []string{"regcred"},
		},
		EtcdEndpoints: []string{"http://a:2379", "http://b:2379"},
	}
}

func envMap(env []corev1.EnvVar) map[string]corev1.EnvVar {
	m := map[string]corev1.EnvVar{}
	for _, e := range env {
		m[e.Name] = e
	}
	return m
}

func TestBrokerDeploymentEnv(t *testing.T) {
	cases := []struct {
		name    string
		cluster *v1alpha1.KafscaleCluster
		values  map[string]string // expected literal values ("" = must be absent)
		secrets map[string]string // expected secretKeyRef keys
	}{
		{
			name:    "minimal",
			cluster: newCluster(),
			values: map[string]string{
				"KAFSCALE_CLUSTER_NAMESPACE": "kafscale", "KAFSCALE_CLUSTER_NAME": "prod",
				"KAFSCALE_ETCD_ENDPOINTS": "http://a:2379,http://b:2379", "KAFSCALE_S3_BUCKET": "segments",
				"KAFSCALE_S3_REGION": "eu-west-1", "KAFSCALE_S3_PATH_STYLE": "false", "KAFSCALE_BROKER_PORT": "9092",
				"KAFSCALE_BROKER_ADDR": ":9092", "KAFSCALE_METRICS_ADDR": ":9093", "KAFSCALE_BROKER_ID": "auto",
				"KAFSCALE_S3_ENDPOINT": "", "KAFSCALE_SEGMENT_BYTES": "", "KAFSCALE_S3_ACCESS_KEY": "",
			},
		},
		{
			name: "full",
			cluster: newCluster(withCredentials("s3-creds"), func(c *v1alpha1.KafscaleCluster) {
				c.Spec.S3.Endpoint, c.Spec.S3.PathStyle, c.Spec.S3.KMSKeyARN = "http://minio:9000", true, "arn:aws:kms:k"
				c.Spec.S3.ReadBucket, c.Spec.S3.ReadRegion, c.Spec.S3.ReadEndpoint = "replica", "us-east-2", "http://r:9000"
				c.Spec.Brokers.AdvertisedHost, c.Spec.Brokers.AdvertisedPort = "kafka.example.com", 19092
				c.Spec.Config = v1alpha1.ClusterConfig{
					SegmentBytes: ptr.To[int64](8 << 20), FlushIntervalMs: ptr.To[int32](250), CacheBytes: ptr.To[int64](1 << 30),
					ReadaheadSegments: ptr.To[int32](4), ProduceSyncFlush: ptr.To(false), StartupTimeoutSec: ptr.To[int32](60),
					AllowAdminAPIs: ptr.To(false), FlushParallelism: ptr.To[int32](8), MaxInflightRequestBytes: ptr.To[int64](64 << 20),
				}
			}),
			values: map[string]string{
				"KAFSCALE_S3_ENDPOINT": "http://minio:9000", "KAFSCALE_S3_PATH_STYLE": "true", "KAFSCALE_S3_KMS_KEY_ID": "arn:aws:kms:k",
				"KAFSCALE_S3_READ_BUCKET": "replica", "KAFSCALE_S3_READ_REGION": "us-east-2", "KAFSCALE_S3_READ_ENDPOINT": "http://r:9000",
				"KAFSCALE_BROKER_HOST": "kafka.example.com", "KAFSCALE_BROKER_PORT": "19092",
				"KAFSCALE_SEGMENT_BYTES": "8388608", "KAFSCALE_FLUSH_INTERVAL_MS": "250", "KAFSCALE_CACHE_BYTES": "1073741824",
				"KAFSCALE_READAHEAD_SEGMENTS": "4", "KAFSCALE_PRODUCE_SYNC_FLUSH": "false", "KAFSCALE_STARTUP_TIMEOUT_SEC": "60",
				"KAFSCALE_ALLOW_ADMIN_APIS": "false", "KAFSCALE_FLUSH_PARALLELISM": "8", "KAFSCALE_MAX_INFLIGHT_REQUEST_BYTES": "67108864",
			},
			// Both pairs the Secret may hold, each under its own name (the broker prefers
			// KAFSCALE_S3_*, then the AWS chain).
			secrets: map[string]string{"KAFSCALE_S3_ACCESS_KEY": "KAFSCALE_S3_ACCESS_KEY", "KAFSCALE_S3_SECRET_KEY": "KAFSCALE_S3_SECRET_KEY",
				"AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := BrokerDeployment(tc.cluster, testInputs())
			env := envMap(d.Spec.Template.Spec.Containers[0].Env)
			for name, want := range tc.values {
				e, ok := env[name]
				if want == "" {
					if ok {
						t.Errorf("%s set to %+v, want absent", name, e)
					}
					continue
				}
				if e.Value != want || e.ValueFrom != nil {
					t.Errorf("%s = %+v, want %q", name, e, want)
				}
			}
			for name, key := range tc.secrets {
				ref := env[name].ValueFrom
				if env[name].Value != "" || ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "s3-creds" || ref.SecretKeyRef.Key != key ||
					ref.SecretKeyRef.Optional == nil || !*ref.SecretKeyRef.Optional {
					t.Errorf("%s = %+v, want optional secretKeyRef s3-creds/%s", name, env[name], key)
				}
			}
			if tc.cluster.Spec.Brokers.AdvertisedHost == "" {
				if f := env["KAFSCALE_BROKER_HOST"].ValueFrom; f == nil || f.FieldRef == nil || f.FieldRef.FieldPath != "status.podIP" {
					t.Errorf("KAFSCALE_BROKER_HOST = %+v, want the pod IP", env["KAFSCALE_BROKER_HOST"])
				}
			}
		})
	}
}

func TestBrokerDeploymentPod(t *testing.T) {
	d := BrokerDeployment(newCluster(withReplicas(5)), testInputs())
	if *d.Spec.Replicas != 5 {
		t.Errorf("replicas = %d", *d.Spec.Replicas)
	}
	p := d.Spec.Template.Spec
	c := p.Containers[0]
	if c.Image != "ghcr.io/kafscale/broker:0.1.0" || c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("image %s %s", c.Image, c.ImagePullPolicy)
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].ConfigMapRef.Name != "kafscale-broker-env" {
		t.Errorf("envFrom = %+v", c.EnvFrom)
	}
	if c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe.HTTPGet.Path != "/healthz" ||
		c.ReadinessProbe.HTTPGet.Port.StrVal != "metrics" {
		t.Errorf("probes %+v %+v", c.ReadinessProbe, c.LivenessProbe)
	}
	sc := c.SecurityContext
	if !*sc.RunAsNonRoot || *sc.AllowPrivilegeEscalation || !*sc.ReadOnlyRootFilesystem || sc.Capabilities.Drop[0] != "ALL" ||
		sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("security context %+v", sc)
	}
	if len(p.ImagePullSecrets) != 1 || p.ImagePullSecrets[0].Name != "regcred" {
		t.Errorf("pull secrets %+v", p.ImagePullSecrets)
	}
	if p.EnableServiceLinks == nil || *p.EnableServiceLinks {
		t.Errorf("service links on: the namespace's Services become KAFSCALE_* variables the broker reports as unknown")
	}
	for k, v := range brokerSelector(newCluster()) {
		if d.Spec.Selector.MatchLabels[k] != v || d.Spec.Template.Labels[k] != v {
			t.Errorf("selector label %s", k)
		}
	}
}

func TestBrokerDeploymentInputHash(t *testing.T) {
	base := BrokerDeployment(newCluster(), testInputs()).Spec.Template.Annotations[InputHashAnnotation]
	cases := []struct {
		name    string
		cluster *v1alpha1.KafscaleCluster
		inputs  func(*BrokerInputs)
		changes bool
	}{
		{"same inputs", newCluster(), nil, false},
		{"replicas only", newCluster(withReplicas(7)), nil, false},
		{"bucket", newCluster(func(c *v1alpha1.KafscaleCluster) { c.Spec.S3.Bucket = "other" }), nil, true},
		{"image", newCluster(), func(in *BrokerInputs) { in.Config.BrokerImage = "broker:2" }, true},
		{"broker env data", newCluster(), func(in *BrokerInputs) { in.EnvHash = "x" }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := testInputs()
			if tc.inputs != nil {
				tc.inputs(&in)
			}
			got := BrokerDeployment(tc.cluster, in).Spec.Template.Annotations[InputHashAnnotation]
			if (got != base) != tc.changes {
				t.Errorf("hash %s vs %s, want changed=%v", got, base, tc.changes)
			}
		})
	}
}

func TestBrokerServices(t *testing.T) {
	cases := []struct {
		name    string
		cluster *v1alpha1.KafscaleCluster
		typ     corev1.ServiceType
		ranges  int
		port    int32
	}{
		{"default", newCluster(), corev1.ServiceTypeClusterIP, 0, 9092},
		{"load balancer", newCluster(func(c *v1alpha1.KafscaleCluster) {
			c.Spec.Brokers.Service = v1alpha1.BrokerServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
				Annotations: map[string]string{"lb": "nlb"}, LoadBalancerSourceRanges: []string{"10.0.0.0/8"}}
			c.Spec.Brokers.AdvertisedPort = 19092
		}), corev1.ServiceTypeLoadBalancer, 1, 19092},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			headless, client := BrokerServices(tc.cluster)
			if headless.Spec.ClusterIP != corev1.ClusterIPNone || headless.Labels["app.kubernetes.io/part-of"] != "kafscale" ||
				headless.Labels["app.kubernetes.io/component"] != "broker" || headless.Spec.Ports[1].Name != "metrics" || headless.Spec.Ports[1].Port != 9093 {
				t.Errorf("headless %+v", headless)
			}
			if client.Spec.Type != tc.typ || len(client.Spec.LoadBalancerSourceRanges) != tc.ranges || client.Spec.Ports[0].Port != tc.port {
				t.Errorf("client %+v", client.Spec)
			}
			for _, p := range client.Spec.Ports {
				if p.Name == "metrics" {
					t.Error("client Service exposes metrics: brokers would be scraped twice")
				}
			}
		})
	}
}

func TestBrokerPDBAndHPA(t *testing.T) {
	c := newCluster()
	if pdb := BrokerPDB(c); pdb.Spec.MaxUnavailable.IntVal != 1 || pdb.Spec.Selector.MatchLabels["app.kubernetes.io/instance"] != "prod" {
		t.Errorf("pdb %+v", pdb.Spec)
	}
	if BrokerHPA(c) != nil {
		t.Error("HPA without autoscaling")
	}
	c.Spec.Brokers.Autoscaling = &v1alpha1.BrokerAutoscalingSpec{MinReplicas: ptr.To[int32](2), MaxReplicas: 9}
	h := BrokerHPA(c)
	if h == nil || *h.Spec.MinReplicas != 2 || h.Spec.MaxReplicas != 9 || h.Spec.ScaleTargetRef.Name != "prod-broker" ||
		*h.Spec.Metrics[0].Resource.Target.AverageUtilization != 70 {
		t.Errorf("hpa %+v", h)
	}
	if BrokerDeployment(c, testInputs()).Spec.Replicas != nil {
		t.Error("Deployment sets replicas although the HPA owns them")
	}
}

// Spec replicas and outside scaling: the spec's count is written when it changes, never
// over a `kubectl scale` of an unchanged spec, and never while an HPA owns the count.
func TestBrokerReplicas(t *testing.T) {
	stored := func(replicas int32, applied string) *appsv1.Deployment {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.Now()}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas)}}
		if applied != "" {
			d.Annotations = map[string]string{SpecReplicasAnnotation: applied}
		}
		return d
	}
	auto := func(c *v1alpha1.KafscaleCluster) {
		c.Spec.Brokers.Autoscaling = &v1alpha1.BrokerAutoscalingSpec{MaxReplicas: 6}
	}
	cases := []struct {
		name       string
		cluster    *v1alpha1.KafscaleCluster
		cur        *appsv1.Deployment
		outsideHPA bool
		want       *int32
	}{
		{"new Deployment", newCluster(withReplicas(3)), nil, false, ptr.To[int32](3)},
		{"kubectl scale of an unchanged spec stays", newCluster(withReplicas(3)), stored(5, "3"), false, nil},
		{"spec changed: applied", newCluster(withReplicas(4)), stored(5, "3"), false, ptr.To[int32](4)},
		{"Deployment from before the annotation: applied once", newCluster(withReplicas(3)), stored(3, ""), false, ptr.To[int32](3)},
		{"outside HPA: left alone though the spec changed", newCluster(withReplicas(2)), stored(7, "3"), true, nil},
		{"outside HPA on a new Deployment", newCluster(withReplicas(3)), nil, true, nil},
		{"own HPA", newCluster(auto), stored(4, ""), false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := BrokerReplicas(tc.cluster, tc.cur, tc.outsideHPA)
			if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
				t.Errorf("got %v, want %v", ptrString(got), ptrString(tc.want))
			}
		})
	}
}

func ptrString(p *int32) string {
	if p == nil {
		return "nil (leave as is)"
	}
	return strconv.Itoa(int(*p))
}

func TestTargetsBrokers(t *testing.T) {
	c := newCluster()
	for _, tc := range []struct {
		ref  autoscalingv2.CrossVersionObjectReference
		want bool
	}{
		{autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "prod-broker"}, true},
		{autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "other"}, false},
		{autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "prod-broker"}, false},
		{autoscalingv2.CrossVersionObjectReference{APIVersion: "kafscale.io/v1alpha1", Kind: "Deployment", Name: "prod-broker"}, false},
	} {
		h := &autoscalingv2.HorizontalPodAutoscaler{Spec: autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: tc.ref}}
		if got := TargetsBrokers(c, h); got != tc.want {
			t.Errorf("%+v: %v, want %v", tc.ref, got, tc.want)
		}
	}
}

// A rolling update replaces one broker at a time (one surge pod, none unavailable), and a
// new broker is Ready only once the operator gave it its turn (DrainTurnGate): the
// Deployment controller does not count terminating pods, so without the gate brokers that
// start faster than they drain pile up terminating (seen in tests/e2e: two at once, one Drain
// out of its deadline).
func TestBrokerRollOneDrainAtATime(t *testing.T) {
	d := BrokerDeployment(newCluster(), testInputs())
	ru := d.Spec.Strategy.RollingUpdate
	if ru == nil || ru.MaxSurge.IntValue() != 1 || ru.MaxUnavailable.IntValue() != 0 {
		t.Fatalf("strategy %+v, want maxSurge 1, maxUnavailable 0", d.Spec.Strategy)
	}
	if g := d.Spec.Template.Spec.ReadinessGates; len(g) != 1 || g[0].ConditionType != DrainTurnGate {
		t.Errorf("readiness gates %+v, want the operator's %s", g, DrainTurnGate)
	}
	if d.Spec.MinReadySeconds != 0 {
		t.Errorf("minReadySeconds %d: the gate orders the drains, a wait on top only slows the roll", d.Spec.MinReadySeconds)
	}
}
