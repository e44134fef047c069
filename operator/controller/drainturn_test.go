package controller

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// gatedBrokerPod is a new broker pod of the operator's template: it carries the gate.
func gatedBrokerPod(name string) *corev1.Pod {
	p := brokerPod(name, false)
	p.UID = types.UID(name + "-uid")
	p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: DrainTurnGate}}
	return p
}

// terminatingSince is a broker pod deleted at the given time with a 60 s grace.
func terminatingSince(name string, deleted time.Time) *corev1.Pod {
	p := brokerPod(name, true)
	p.UID = types.UID(name + "-uid")
	p.DeletionTimestamp = &metav1.Time{Time: deleted.Add(60 * time.Second)}
	return p
}

func TestDrainTurn(t *testing.T) {
	now := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	pod := gatedBrokerPod("new")
	otherCluster := terminatingSince("other-cluster", now)
	otherCluster.Labels["app.kubernetes.io/instance"] = "staging"
	etcdPod := terminatingSince("prod-etcd-0", now)
	etcdPod.Labels["app.kubernetes.io/name"] = "kafscale-etcd"
	for _, tc := range []struct {
		name        string
		peers       []corev1.Pod
		wantBlocker string
		wantWait    time.Duration
	}{
		{"alone", []corev1.Pod{*pod}, "", 0},
		{"beside serving brokers", []corev1.Pod{*pod, *brokerPod("old-1", false), *brokerPod("old-2", false)}, "", 0},
		{"while an old broker drains", []corev1.Pod{*pod, *terminatingSince("old-1", now.Add(-10*time.Second))}, "old-1", 55 * time.Second},
		{"the later of two drains", []corev1.Pod{*terminatingSince("old-1", now.Add(-50*time.Second)), *terminatingSince("old-2", now.Add(-5*time.Second))}, "old-2", 60 * time.Second},
		{"a drain past its grace and margin", []corev1.Pod{*terminatingSince("stuck", now.Add(-66*time.Second))}, "", 0},
		{"another cluster's drain", []corev1.Pod{*otherCluster}, "", 0},
		{"a terminating pod that is no broker", []corev1.Pod{*etcdPod}, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blocker, wait := drainTurn(pod, tc.peers, now)
			if blocker != tc.wantBlocker || wait != tc.wantWait {
				t.Errorf("drainTurn = %q, %v; want %q, %v", blocker, wait, tc.wantBlocker, tc.wantWait)
			}
		})
	}
}

func podClient(t *testing.T, pods ...*corev1.Pod) client.Client {
	t.Helper()
	b := fake.NewClientBuilder().WithScheme(fakeScheme(t)).WithStatusSubresource(&corev1.Pod{})
	for _, p := range pods {
		b = b.WithObjects(p)
	}
	return b.Build()
}

func drainTurnCondition(t *testing.T, cli client.Client, name string) *corev1.PodCondition {
	t.Helper()
	var p corev1.Pod
	if err := cli.Get(context.Background(), types.NamespacedName{Namespace: "kafscale", Name: name}, &p); err != nil {
		t.Fatal(err)
	}
	for i, c := range p.Status.Conditions {
		if c.Type == DrainTurnGate {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func TestDrainTurnReconcilerWaitsForTheDrainingBroker(t *testing.T) {
	now := time.Now().Truncate(time.Second) // the API keeps timestamps to the second
	pod := gatedBrokerPod("new")
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.ContainersReady, Status: corev1.ConditionTrue}}
	old := terminatingSince("old", now.Add(-20*time.Second))
	cli := podClient(t, pod, old)
	r := &DrainTurnReconciler{Client: cli, Now: func() time.Time { return now }}
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(pod)}

	res, err := r.Reconcile(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if c := drainTurnCondition(t, cli, "new"); c != nil {
		t.Fatalf("the gate was set while old drains: %+v", c)
	}
	if want := 45 * time.Second; res.RequeueAfter != want {
		t.Errorf("requeue after %v, want %v (the rest of old's grace and the margin)", res.RequeueAfter, want)
	}

	// The old broker is gone: the waiting pod's turn, through the mapping of old's deletion.
	if err := cli.Get(context.Background(), client.ObjectKeyFromObject(old), old); err != nil {
		t.Fatal(err)
	}
	old.Finalizers = nil
	if err := cli.Update(context.Background(), old); client.IgnoreNotFound(err) != nil {
		t.Fatal(err)
	}
	reqs := BrokerPodsWaitingForTurn(cli)(context.Background(), old)
	if len(reqs) != 2 || reqs[1].Name != "new" {
		t.Fatalf("the deletion of old maps to %v, want old itself and new", reqs)
	}
	if _, err := r.Reconcile(context.Background(), reqs[1]); err != nil {
		t.Fatal(err)
	}
	c := drainTurnCondition(t, cli, "new")
	if c == nil || c.Status != corev1.ConditionTrue {
		t.Fatalf("gate condition %+v once no broker drains, want True", c)
	}
	var got corev1.Pod
	if err := cli.Get(context.Background(), req.NamespacedName, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Status.Conditions) != 2 {
		t.Errorf("conditions %+v: the kubelet's ContainersReady must stay beside the gate", got.Status.Conditions)
	}
	if reqs := BrokerPodsWaitingForTurn(cli)(context.Background(), &got); len(reqs) != 1 {
		t.Errorf("an admitted pod is still mapped as waiting: %v", reqs)
	}
}

// Pods of an older operator's template carry no gate: the reconciler leaves them alone.
func TestDrainTurnReconcilerLeavesUngatedPods(t *testing.T) {
	pod := brokerPod("older", false)
	cli := podClient(t, pod)
	r := &DrainTurnReconciler{Client: cli}
	if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(pod)}); err != nil {
		t.Fatal(err)
	}
	if c := drainTurnCondition(t, cli, "older"); c != nil {
		t.Errorf("a pod without the gate got the condition %+v", c)
	}
}
