package controller

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/kafscale/kafscale/operator/api/v1alpha1"
)

func brokerPod(name string, terminating bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kafscale", Labels: map[string]string{
		"app.kubernetes.io/name": "kafscale-broker", "app.kubernetes.io/component": "broker",
		"app.kubernetes.io/managed-by": "kafscale-operator", "app.kubernetes.io/instance": "prod",
	}}}
	if terminating {
		now := metav1.Now()
		p.DeletionTimestamp = &now
		p.Finalizers = []string{"test/hold"} // a terminating object needs one to exist
	}
	return p
}

func reconcilePod(t *testing.T, pod *corev1.Pod, objs ...*v1alpha1.KafscaleCluster) (ctrl.Result, error) {
	t.Helper()
	cli := fakeClient(t, pod)
	for _, c := range objs {
		if err := cli.Create(boundedContext(t), c.DeepCopy()); err != nil {
			t.Fatal(err)
		}
	}
	pool := NewEtcdPool()
	defer pool.Close()
	r := &PodDrainReconciler{Client: cli, Config: testInputs().Config, Etcd: pool}
	return r.Reconcile(boundedContext(t), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}})
}

// Only terminating broker pods of a cluster that still exists are drained; a drain that
// cannot reach the cluster's etcd is an error, so controller-runtime retries it while the
// pod's preStop hook holds SIGTERM back.
func TestPodDrainReconcilerDrainsOnlyTerminatingBrokerPods(t *testing.T) {
	cluster := newCluster(func(c *v1alpha1.KafscaleCluster) { c.Spec.Etcd.Endpoints = []string{unreachableEtcd} })
	if _, err := reconcilePod(t, brokerPod("prod-broker-a", false), cluster); err != nil {
		t.Errorf("a running pod: %v, want nothing done", err)
	}
	other := brokerPod("web-1", true)
	other.Labels = map[string]string{"app": "web"}
	if _, err := reconcilePod(t, other, cluster); err != nil {
		t.Errorf("a terminating pod that is no broker: %v, want nothing done", err)
	}
	if _, err := reconcilePod(t, brokerPod("prod-broker-b", true)); err != nil {
		t.Errorf("a terminating broker pod of a deleted cluster: %v, want nothing done", err)
	}
	if _, err := reconcilePod(t, brokerPod("prod-broker-c", true), cluster); err == nil {
		t.Error("a terminating broker pod whose etcd is unreachable was not retried")
	}
}
