package operator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/kafscale/kafscale/operator/api/v1alpha1"
	"github.com/kafscale/kafscale/operator/controller"
)

func snapshot(t *testing.T, cli *clientv3.Client, cluster string) *metadata.Snapshot {
	t.Helper()
	resp, err := cli.Get(context.Background(), metadata.Keys{Namespace: namespace, Cluster: cluster}.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	s := &metadata.Snapshot{}
	if len(resp.Kvs) == 1 {
		if err := json.Unmarshal(resp.Kvs[0].Value, s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// TestClusterAndTopics: a KafscaleCluster makes its broker objects and conditions, its
// KafscaleTopics reach the metadata snapshot in etcd next to a topic made through the Kafka
// API, and edits and deletions propagate. No pods run in envtest: the test patches the
// Deployment's status to simulate ready brokers.
func TestClusterAndTopics(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()
	c := e.c
	create(t, c, credentialsSecret("s3-creds", e.s3.AccessKey, e.s3.SecretKey))
	create(t, c, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kafscale-broker-env", Namespace: namespace},
		Data: map[string]string{"KAFSCALE_ACL_ENABLED": "false"}})

	// A topic created through the Kafka API before the operator ran.
	etcdCli := e.etcd.Client()
	store, err := metadata.NewStore(ctx, etcdCli, metadata.Keys{Namespace: namespace, Cluster: "prod"}, metadata.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.Update(ctx, func(s *metadata.Snapshot) error {
		s.Topics = append(s.Topics, metadata.Topic{Name: "made-by-client", ID: [16]byte{7}, Partitions: []metadata.Partition{{ID: 0, Leader: -1}}})
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	op := e.startOperator(t, e.operatorConfig(t, "op-a", "/test/"+randomKey()+"/leader"))

	kc := e.cluster("prod", "s3-creds")
	kc.Spec.Brokers.Replicas = ptr.To[int32](3)
	kc.Spec.Brokers.Service = v1alpha1.BrokerServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
		Annotations: map[string]string{"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}, LoadBalancerSourceRanges: []string{"10.0.0.0/8"}}
	kc.Spec.Config.SegmentBytes = ptr.To[int64](8 << 20)
	create(t, c, kc)

	var deploy appsv1.Deployment
	eventually(t, "broker Deployment", func() error { return get(t, c, "prod-broker", &deploy) })
	if *deploy.Spec.Replicas != 3 || deploy.Spec.Template.Spec.Containers[0].Image != "ghcr.io/kafscale/broker:test" {
		t.Errorf("deployment replicas %d image %s", *deploy.Spec.Replicas, deploy.Spec.Template.Spec.Containers[0].Image)
	}
	if ref := metav1.GetControllerOf(&deploy); ref == nil || ref.Kind != "KafscaleCluster" || ref.Name != "prod" {
		t.Errorf("deployment controller %+v", ref)
	}
	env := map[string]corev1.EnvVar{}
	for _, v := range deploy.Spec.Template.Spec.Containers[0].Env {
		env[v.Name] = v
	}
	if env["KAFSCALE_ETCD_ENDPOINTS"].Value != e.etcd.Endpoints()[0] || env["KAFSCALE_S3_BUCKET"].Value != e.s3.Bucket ||
		env["KAFSCALE_SEGMENT_BYTES"].Value != "8388608" || env["KAFSCALE_CLUSTER_NAME"].Value != "prod" {
		t.Errorf("broker env %+v", env)
	}
	if s := env["KAFSCALE_S3_SECRET_KEY"]; s.Value != "" || s.ValueFrom.SecretKeyRef.Name != "s3-creds" {
		t.Errorf("secret key env %+v", s)
	}
	if from := deploy.Spec.Template.Spec.Containers[0].EnvFrom; len(from) != 1 || from[0].ConfigMapRef.Name != "kafscale-broker-env" {
		t.Errorf("envFrom %+v", from)
	}
	hash := deploy.Spec.Template.Annotations[controller.InputHashAnnotation]

	var headless, clientSvc corev1.Service
	var pdb policyv1.PodDisruptionBudget
	eventually(t, "Services and PDB", func() error {
		if err := get(t, c, "prod-broker-headless", &headless); err != nil {
			return err
		}
		if err := get(t, c, "prod-broker", &clientSvc); err != nil {
			return err
		}
		return get(t, c, "prod-broker", &pdb)
	})
	if headless.Spec.ClusterIP != corev1.ClusterIPNone || headless.Labels["app.kubernetes.io/component"] != "broker" ||
		headless.Labels["app.kubernetes.io/part-of"] != "kafscale" || headless.Spec.Ports[1].Name != "metrics" {
		t.Errorf("headless Service %+v", headless)
	}
	if clientSvc.Spec.Type != corev1.ServiceTypeLoadBalancer || clientSvc.Spec.LoadBalancerSourceRanges[0] != "10.0.0.0/8" ||
		clientSvc.Annotations["service.beta.kubernetes.io/aws-load-balancer-type"] != "nlb" {
		t.Errorf("client Service %+v", clientSvc)
	}
	if pdb.Spec.MaxUnavailable.IntVal != 1 {
		t.Errorf("PDB %+v", pdb.Spec)
	}

	clusterCondition(t, c, "prod", v1alpha1.ConditionEtcdAvailable, metav1.ConditionTrue)
	clusterCondition(t, c, "prod", v1alpha1.ConditionEtcdSnapshotAccess, metav1.ConditionTrue)
	got := clusterCondition(t, c, "prod", v1alpha1.ConditionBrokersReady, metav1.ConditionFalse)
	if st, _ := condition(got.Status.Conditions, v1alpha1.ConditionReady); st != metav1.ConditionFalse {
		t.Errorf("Ready = %s without ready brokers", st)
	}
	if got.Status.EtcdEndpoints[0] != e.etcd.Endpoints()[0] {
		t.Errorf("status etcd endpoints %v", got.Status.EtcdEndpoints)
	}
	if v := metric(t, op.cfg.MetricsAddr, `kafscale_operator_cluster_desired_brokers{cluster="prod"}`); v != "3" {
		t.Errorf("desired brokers metric %q", v)
	}

	// Simulated readiness (no kubelet in envtest).
	if err := get(t, c, "prod-broker", &deploy); err != nil {
		t.Fatal(err)
	}
	before := deploy.DeepCopy()
	deploy.Status = appsv1.DeploymentStatus{ObservedGeneration: deploy.Generation, Replicas: 3, ReadyReplicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3}
	if err := c.Status().Patch(ctx, &deploy, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
	got = clusterCondition(t, c, "prod", v1alpha1.ConditionReady, metav1.ConditionTrue)
	if got.Status.ReadyBrokers != 3 || got.Status.ObservedGeneration != got.Generation {
		t.Errorf("status %+v", got.Status)
	}
	eventually(t, "ready brokers metric", func() error {
		if v := metric(t, op.cfg.MetricsAddr, `kafscale_operator_cluster_ready_brokers{cluster="prod"}`); v != "3" {
			return fmt.Errorf("ready brokers metric %q", v)
		}
		return nil
	})

	// Topics.
	topic := &v1alpha1.KafscaleTopic{ObjectMeta: metav1.ObjectMeta{Name: "orders-crd", Namespace: namespace},
		Spec: v1alpha1.KafscaleTopicSpec{ClusterRef: "prod", TopicName: "orders", Partitions: 3,
			Retention: v1alpha1.RetentionSpec{Ms: ptr.To[int64](86400000)}, Configs: map[string]string{"cleanup.policy": "delete"}}}
	create(t, c, topic)
	eventually(t, "topic published", func() error {
		s := snapshot(t, etcdCli, "prod")
		tp := s.Topic("orders")
		if tp == nil || len(tp.Partitions) != 3 || tp.Configs["retention.ms"] != "86400000" || tp.Configs["cleanup.policy"] != "delete" {
			return fmt.Errorf("snapshot topics %+v", s.Topics)
		}
		if s.Topic("made-by-client") == nil || s.ClusterID == "" {
			return fmt.Errorf("snapshot %+v", s)
		}
		return nil
	})
	eventually(t, "topic status", func() error {
		if err := get(t, c, "orders-crd", topic); err != nil {
			return err
		}
		st, _ := condition(topic.Status.Conditions, v1alpha1.ConditionReady)
		if st != metav1.ConditionTrue || topic.Status.Partitions != 3 || len(topic.Status.PartitionLeaders) != 3 || topic.Status.ObservedGeneration != topic.Generation {
			return fmt.Errorf("status %+v", topic.Status)
		}
		return nil
	})
	if len(topic.Finalizers) != 1 || topic.Finalizers[0] != controller.TopicFinalizer {
		t.Errorf("finalizers %v", topic.Finalizers)
	}

	// Partition 0 as its leader broker would have written it (and a stale state of an older
	// topic of the same name for partition 1, which must be ignored).
	keys := metadata.Keys{Namespace: namespace, Cluster: "prod"}
	for p, id := range map[int32][16]byte{0: snapshot(t, etcdCli, "prod").Topic("orders").ID, 1: {0xde, 0xad}} {
		st, _ := json.Marshal(metadata.PartitionState{TopicID: id, LogStartOffset: 7, HighWatermark: 42})
		if _, err := etcdCli.Put(ctx, keys.Partition("orders", p), string(st)); err != nil {
			t.Fatal(err)
		}
	}

	// Edit: grow partitions and change configs.
	before2 := topic.DeepCopy()
	topic.Spec.Partitions = 5
	topic.Spec.Retention.Ms = ptr.To[int64](-1)
	if err := c.Patch(ctx, topic, client.MergeFrom(before2)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "topic edit published", func() error {
		tp := snapshot(t, etcdCli, "prod").Topic("orders")
		if tp == nil || len(tp.Partitions) != 5 || tp.Configs["retention.ms"] != "-1" {
			return fmt.Errorf("topic %+v", tp)
		}
		return nil
	})
	eventually(t, "topic status after the edit, with partition 0's offsets", func() error {
		if err := get(t, c, "orders-crd", topic); err != nil {
			return err
		}
		pl := topic.Status.PartitionLeaders
		if topic.Status.Partitions != 5 || len(pl) != 5 || pl[0].HighWatermark == nil || *pl[0].HighWatermark != 42 ||
			*pl[0].LogStartOffset != 7 || pl[1].HighWatermark != nil {
			return fmt.Errorf("status %+v", topic.Status)
		}
		return nil
	})

	// A config KafScale does not support is refused in status, not published.
	bad := &v1alpha1.KafscaleTopic{ObjectMeta: metav1.ObjectMeta{Name: "bad", Namespace: namespace},
		Spec: v1alpha1.KafscaleTopicSpec{ClusterRef: "prod", Partitions: 1, Configs: map[string]string{"cleanup.policy": "compact"}}}
	create(t, c, bad)
	eventually(t, "invalid topic condition", func() error {
		if err := get(t, c, "bad", bad); err != nil {
			return err
		}
		if st, reason := condition(bad.Status.Conditions, v1alpha1.ConditionReady); st != metav1.ConditionFalse || reason != "InvalidSpec" {
			return fmt.Errorf("conditions %+v", bad.Status.Conditions)
		}
		return nil
	})
	if snapshot(t, etcdCli, "prod").Topic("bad") != nil {
		t.Error("invalid topic published")
	}

	// Edit the cluster: replicas and a pod input.
	if err := get(t, c, "prod", kc); err != nil {
		t.Fatal(err)
	}
	before3 := kc.DeepCopy()
	kc.Spec.Brokers.Replicas = ptr.To[int32](4)
	kc.Spec.Config.SegmentBytes = ptr.To[int64](16 << 20)
	if err := c.Patch(ctx, kc, client.MergeFrom(before3)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "cluster edit applied", func() error {
		if err := get(t, c, "prod-broker", &deploy); err != nil {
			return err
		}
		if *deploy.Spec.Replicas != 4 || deploy.Spec.Template.Annotations[controller.InputHashAnnotation] == hash {
			return fmt.Errorf("replicas %d hash %s", *deploy.Spec.Replicas, deploy.Spec.Template.Annotations[controller.InputHashAnnotation])
		}
		return nil
	})
	clusterCondition(t, c, "prod", v1alpha1.ConditionBrokersReady, metav1.ConditionFalse)

	// Delete the topic: gone from the snapshot, the Kafka-made topic stays.
	if err := c.Delete(ctx, topic); err != nil {
		t.Fatal(err)
	}
	eventually(t, "topic removed", func() error {
		s := snapshot(t, etcdCli, "prod")
		if s.Topic("orders") != nil || s.Topic("made-by-client") == nil {
			return fmt.Errorf("topics %+v", s.Topics)
		}
		if err := get(t, c, "orders-crd", topic); err == nil {
			return fmt.Errorf("KafscaleTopic still there, finalizers %v", topic.Finalizers)
		}
		return nil
	})

	// No S3 credential anywhere in the metadata etcd.
	resp, err := etcdCli.Get(ctx, "\x00", clientv3.WithFromKey())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		t.Fatal("etcd holds no keys")
	}
	for _, kv := range resp.Kvs {
		for _, secret := range []string{e.s3.SecretKey, e.s3.AccessKey} {
			if strings.Contains(string(kv.Key), secret) || strings.Contains(string(kv.Value), secret) {
				t.Errorf("etcd key %s holds an S3 credential", kv.Key)
			}
		}
	}
	t.Logf("scanned %d etcd keys for S3 credentials", len(resp.Kvs))
}
