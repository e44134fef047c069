package operator_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kafscale/kafscale/broker/control"
	"github.com/kafscale/kafscale/broker/control/controlpb"
	"github.com/kafscale/kafscale/operator/controller"
	"github.com/kafscale/kafscale/tests/brokertest"
)

// brokerPod is a broker "pod": a Pod object matching the broker Deployment's selector (there
// is no kubelet in envtest, so nothing runs it; spec.nodeName makes a deletion leave it
// terminating, as a kubelet would until the container exits) and the real broker binary on
// loopback, registered under the pod's name (KAFSCALE_POD_NAME).
type brokerPod struct {
	pod    *corev1.Pod
	broker *brokertest.Broker
	ctl    *control.Client
}

func (e *env) startBrokerPod(t *testing.T, cluster string, labels map[string]string, name string, nodeID int) *brokerPod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels},
		Spec:       corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "broker", Image: "ghcr.io/kafscale/broker:test"}}},
	}
	create(t, e.c, pod)
	b := brokertest.Start(t, brokertest.Options{NodeID: nodeID, Etcd: e.etcd, S3: e.s3, Control: true, Env: []string{
		"KAFSCALE_POD_NAME=" + name, "KAFSCALE_CLUSTER_NAMESPACE=" + namespace, "KAFSCALE_CLUSTER_NAME=" + cluster,
		"KAFSCALE_LOG_LEVEL=info",
		// Long enough that a paused broker (below) stays registered.
		"KAFSCALE_BROKER_LEASE_TTL_SEC=60",
	}})
	ctl, err := control.Dial(b.ControlAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctl.Close() })
	return &brokerPod{pod: pod, broker: b, ctl: ctl}
}

func (p *brokerPod) state(t *testing.T) controlpb.StatusResponse_State {
	t.Helper()
	st, err := p.ctl.Status(context.Background())
	if err != nil {
		t.Fatalf("status of broker %d (pod %s): %v", p.broker.NodeID, p.pod.Name, err)
	}
	return st.State
}

// leaders returns each partition's leader as the given broker's Metadata answer says.
func leaders(t *testing.T, seed, topic string) map[int32]int32 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	out := map[int32]int32{}
	for _, p := range resp.Topics[0].Partitions {
		out[p.Partition] = p.Leader
	}
	return out
}

func createKafkaTopic(t *testing.T, seed, topic string, partitions int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 1
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 30000
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// TestOperatorDrainsBrokers: (i) a deleted broker pod's broker is drained through its
// control service while the pod is still terminating, and its partitions move to the other
// brokers; (ii) lowering spec.brokers.replicas from 3 to 2 drains the broker the operator
// chose, marks its pod with the lowest pod-deletion-cost, and only then lowers the
// Deployment's replicas: while the drain cannot get through, the replicas stay; (iii) raising
// the replicas again before the ReplicaSet removed the drained pod gets that pod replaced.
func TestOperatorDrainsBrokers(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()
	c := e.c
	create(t, c, credentialsSecret("s3-creds", e.s3.AccessKey, e.s3.SecretKey))
	cfg := e.operatorConfig(t, "op-a", "/test/"+randomKey()+"/leader")
	cfg.BrokerDrainTimeout = time.Second
	op := e.startOperator(t, cfg)

	kc := e.cluster("drain", "s3-creds")
	kc.Spec.Brokers.Replicas = ptr.To[int32](3)
	create(t, c, kc)
	var deploy appsv1.Deployment
	eventually(t, "broker Deployment", func() error { return get(t, c, "drain-broker", &deploy) })
	labels := deploy.Spec.Template.Labels

	pods := []*brokerPod{
		e.startBrokerPod(t, "drain", labels, "drain-broker-a", 0),
		e.startBrokerPod(t, "drain", labels, "drain-broker-b", 1),
		e.startBrokerPod(t, "drain", labels, "drain-broker-c", 2),
	}
	seed := pods[0].broker.Addr
	createKafkaTopic(t, seed, "orders", 6)
	eventually(t, "partitions led by all three brokers", func() error {
		by := map[int32]int{}
		for _, l := range leaders(t, seed, "orders") {
			by[l]++
		}
		if by[0] == 0 || by[1] == 0 || by[2] == 0 {
			return fmt.Errorf("leaders per broker %v", by)
		}
		return nil
	})

	// (i) A deleted pod (a rolling update, an HPA, a person) is drained while it terminates.
	victim := pods[1]
	deleted := time.Now()
	if err := c.Delete(ctx, victim.pod); err != nil {
		t.Fatal(err)
	}
	eventually(t, "broker 1 drained by the operator", func() error {
		if s := victim.state(t); s != controlpb.StatusResponse_DRAINED {
			return fmt.Errorf("broker 1 is %s", s)
		}
		return nil
	})
	t.Logf("pod deleted → broker drained through gRPC: %s", time.Since(deleted).Round(time.Millisecond))
	var still corev1.Pod
	if err := get(t, c, victim.pod.Name, &still); err != nil || still.DeletionTimestamp == nil {
		t.Fatalf("pod %s after the drain: %v (deletionTimestamp %v), want it still terminating", victim.pod.Name, err, still.DeletionTimestamp)
	}
	eventually(t, "no partition led by broker 1", func() error {
		for p, l := range leaders(t, seed, "orders") {
			if l == 1 || l < 0 {
				return fmt.Errorf("partition %d led by %d", p, l)
			}
		}
		return nil
	})
	for _, p := range []*brokerPod{pods[0], pods[2]} {
		if s := p.state(t); s != controlpb.StatusResponse_SERVING {
			t.Fatalf("broker %d is %s, want only the deleted pod's broker drained", p.broker.NodeID, s)
		}
	}
	if v := metric(t, op.cfg.MetricsAddr, `kafscale_operator_broker_drains_total{cluster="drain",result="drained"}`); v != "1" {
		t.Errorf("drains metric %q, want 1", v)
	}
	eventually(t, "a Drained event on the pod", func() error {
		var list eventsv1.EventList
		if err := c.List(ctx, &list, client.InNamespace(namespace)); err != nil {
			return err
		}
		for _, ev := range list.Items {
			if ev.Regarding.Name == victim.pod.Name && ev.Reason == "Drained" {
				t.Logf("event on %s: %s", victim.pod.Name, ev.Note)
				return nil
			}
		}
		return fmt.Errorf("%d events, none Drained for %s", len(list.Items), victim.pod.Name)
	})
	// The "kubelet" finishes: SIGTERM (nothing left to drain), then the object goes.
	victim.broker.Stop()
	if err := c.Delete(ctx, &still, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}

	// The ReplicaSet's replacement pod.
	pods[1] = e.startBrokerPod(t, "drain", labels, "drain-broker-d", 3)
	eventually(t, "partitions spread again", func() error {
		if len(leaders(t, seed, "orders")) != 6 {
			return fmt.Errorf("metadata incomplete")
		}
		return nil
	})

	// (ii) Scale-down through the spec: 3 → 2, first with every broker hung (SIGSTOP), so
	// no drain gets through: the Deployment keeps 3 replicas.
	drainSum := func() float64 {
		var f float64
		fmt.Sscan(metricNoFail(op.cfg.MetricsAddr, `kafscale_operator_broker_drain_duration_seconds_sum{cluster="drain"}`), &f)
		return f
	}
	sumBefore := drainSum()
	for _, p := range pods {
		p.broker.Pause()
	}
	if err := get(t, c, "drain", kc); err != nil {
		t.Fatal(err)
	}
	before := kc.DeepCopy()
	kc.Spec.Brokers.Replicas = ptr.To[int32](2)
	if err := c.Patch(ctx, kc, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a failed drain for the scale-down", func() error {
		if v := metricNoFail(op.cfg.MetricsAddr, `kafscale_operator_broker_drains_total{cluster="drain",result="failed"}`); v == "" || v == "0" {
			return fmt.Errorf("failed drains %q", v)
		}
		return nil
	})
	if err := get(t, c, "drain-broker", &deploy); err != nil {
		t.Fatal(err)
	}
	if *deploy.Spec.Replicas != 3 {
		t.Fatalf("Deployment replicas %d while no broker could be drained, want 3", *deploy.Spec.Replicas)
	}
	for _, p := range pods {
		var cur corev1.Pod
		if err := get(t, c, p.pod.Name, &cur); err != nil {
			t.Fatal(err)
		}
		if _, ok := cur.Annotations[controller.PodDeletionCostAnnotation]; ok {
			t.Fatalf("pod %s marked for deletion although its broker was not drained", p.pod.Name)
		}
	}
	scaled := time.Now()
	for _, p := range pods {
		p.broker.Resume()
	}
	eventually(t, "Deployment scaled to 2", func() error {
		if err := get(t, c, "drain-broker", &deploy); err != nil {
			return err
		}
		if *deploy.Spec.Replicas != 2 {
			return fmt.Errorf("replicas %d", *deploy.Spec.Replicas)
		}
		return nil
	})
	t.Logf("brokers resumed → Deployment replicas 2 (retry backoff and drain included): %s; the drain call took %.0f ms",
		time.Since(scaled).Round(time.Millisecond), (drainSum()-sumBefore)*1000)
	var marked []*brokerPod
	for _, p := range pods {
		var cur corev1.Pod
		if err := get(t, c, p.pod.Name, &cur); err != nil {
			t.Fatal(err)
		}
		drained := p.state(t) == controlpb.StatusResponse_DRAINED
		isMarked := cur.Annotations[controller.PodDeletionCostAnnotation] == controller.ScaleDownDeletionCost
		if drained != isMarked {
			t.Fatalf("pod %s: drained %v, marked %v; want both or neither", p.pod.Name, drained, isMarked)
		}
		if isMarked {
			marked = append(marked, p)
		}
	}
	if len(marked) != 1 {
		t.Fatalf("%d pods drained and marked for the scale-down, want 1", len(marked))
	}
	t.Logf("scale-down chose pod %s (broker %d)", marked[0].pod.Name, marked[0].broker.NodeID)
	eventually(t, "no partition led by the scaled-away broker", func() error {
		for p, l := range leaders(t, pods[0].broker.Addr, "orders") {
			if l == int32(marked[0].broker.NodeID) || l < 0 {
				return fmt.Errorf("partition %d led by %d", p, l)
			}
		}
		return nil
	})
	if v := metric(t, op.cfg.MetricsAddr, `kafscale_operator_broker_drains_total{cluster="drain",result="drained"}`); v != "2" {
		t.Errorf("drains metric %q, want 2", v)
	}

	// (iii) The scale-down is undone before the ReplicaSet (absent in envtest) deleted the
	// marked pod: its broker stays drained, so the operator deletes the pod to have it replaced.
	if err := get(t, c, "drain", kc); err != nil {
		t.Fatal(err)
	}
	before = kc.DeepCopy()
	kc.Spec.Brokers.Replicas = ptr.To[int32](3)
	if err := c.Patch(ctx, kc, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the drained, marked pod deleted after the scale-down was undone", func() error {
		var cur corev1.Pod
		if err := get(t, c, marked[0].pod.Name, &cur); err != nil {
			return err
		}
		if cur.DeletionTimestamp == nil {
			return fmt.Errorf("pod %s not terminating", cur.Name)
		}
		return nil
	})
	for _, p := range pods {
		var cur corev1.Pod
		if p != marked[0] {
			if err := get(t, c, p.pod.Name, &cur); err != nil || cur.DeletionTimestamp != nil {
				t.Fatalf("serving pod %s: %v, deletion %v; want it left alone", p.pod.Name, err, cur.DeletionTimestamp)
			}
		}
	}
}
