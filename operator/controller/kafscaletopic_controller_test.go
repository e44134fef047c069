package controller

import (
	"strings"
	"testing"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kafscale/kafscale/operator/api/v1alpha1"
)

func newTopic(name string, configs map[string]string) *v1alpha1.KafscaleTopic {
	return &v1alpha1.KafscaleTopic{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kafscale", Generation: 2},
		Spec:       v1alpha1.KafscaleTopicSpec{ClusterRef: "prod", Partitions: 3, Configs: configs},
	}
}

func reconcileTopic(t *testing.T, cli client.Client, topic *v1alpha1.KafscaleTopic) (*v1alpha1.KafscaleTopic, reconcile.Result, error) {
	t.Helper()
	pool := NewEtcdPool()
	defer pool.Close()
	r := &TopicReconciler{Client: cli, Config: testInputs().Config, Etcd: pool}
	ctx := boundedContext(t)
	res, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: topic.Namespace, Name: topic.Name}})
	var got v1alpha1.KafscaleTopic
	if gerr := cli.Get(ctx, client.ObjectKeyFromObject(topic), &got); gerr != nil {
		t.Fatal(gerr)
	}
	return &got, res, err
}

func assertTopicCondition(t *testing.T, topic *v1alpha1.KafscaleTopic, reason string) {
	t.Helper()
	for _, typ := range []string{v1alpha1.ConditionPublished, v1alpha1.ConditionReady} {
		cond := apimeta.FindStatusCondition(topic.Status.Conditions, typ)
		if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != reason || cond.ObservedGeneration != 2 {
			t.Errorf("%s condition %+v, want False/%s at generation 2", typ, cond, reason)
		}
	}
	if topic.Status.ObservedGeneration != 2 {
		t.Errorf("observed generation %d, want 2", topic.Status.ObservedGeneration)
	}
}

// A topic whose spec cannot be published gets the finalizer (its removal must reach etcd
// later) and an InvalidSpec condition naming the problem, with no retry until the spec
// changes.
func TestTopicReconcilerRefusesAnInvalidSpec(t *testing.T) {
	topic := newTopic("orders", map[string]string{"cleanup.policy": "compact"})
	got, res, err := reconcileTopic(t, fakeClient(t, topic), topic)
	if err != nil || res.RequeueAfter != 0 {
		t.Fatalf("Reconcile = %+v, %v; want no error and no requeue for a spec error", res, err)
	}
	if !controllerutil.ContainsFinalizer(got, TopicFinalizer) {
		t.Error("finalizer not added")
	}
	assertTopicCondition(t, got, "InvalidSpec")
	if cond := apimeta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady); cond != nil && !strings.Contains(cond.Message, "cleanup.policy") {
		t.Errorf("message %q does not name cleanup.policy", cond.Message)
	}
}

// A topic whose cluster does not exist is reported ClusterUnavailable and looked at again
// later.
func TestTopicReconcilerWaitsForItsCluster(t *testing.T) {
	topic := newTopic("orders", nil)
	got, res, err := reconcileTopic(t, fakeClient(t, topic), topic)
	if err != nil || res.RequeueAfter != etcdRetry {
		t.Fatalf("Reconcile = %+v, %v; want a requeue after %s", res, err, etcdRetry)
	}
	assertTopicCondition(t, got, "ClusterUnavailable")
}
