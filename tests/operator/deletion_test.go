package operator_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kafscale/kafscale/internal/metadata"
	"github.com/kafscale/kafscale/operator/api/v1alpha1"
)

// owned lists every object of the kinds the cluster reconciler makes, in the namespace, as
// "Kind/name" → its controller reference (nil when it has none).
func owned(t *testing.T, c client.Client) map[string]*metav1.OwnerReference {
	t.Helper()
	out := map[string]*metav1.OwnerReference{}
	lists := map[string]client.ObjectList{
		"Deployment": &appsv1.DeploymentList{}, "StatefulSet": &appsv1.StatefulSetList{}, "Service": &corev1.ServiceList{},
		"PodDisruptionBudget": &policyv1.PodDisruptionBudgetList{}, "HorizontalPodAutoscaler": &autoscalingv2.HorizontalPodAutoscalerList{},
		"CronJob": &batchv1.CronJobList{}, "ConfigMap": &corev1.ConfigMapList{},
	}
	for kind, list := range lists {
		if err := c.List(context.Background(), list, client.InNamespace(namespace)); err != nil {
			t.Fatal(err)
		}
		items, err := metaItems(list)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range items {
			if kind == "ConfigMap" && o.GetName() == "kube-root-ca.crt" {
				continue // made by kube-controller-manager's publisher in real clusters, not by us
			}
			out[kind+"/"+o.GetName()] = metav1.GetControllerOfNoCopy(o)
		}
	}
	return out
}

func metaItems(list client.ObjectList) ([]metav1.Object, error) {
	var out []metav1.Object
	switch l := list.(type) {
	case *appsv1.DeploymentList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	case *appsv1.StatefulSetList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	case *corev1.ServiceList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	case *policyv1.PodDisruptionBudgetList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	case *autoscalingv2.HorizontalPodAutoscalerList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	case *batchv1.CronJobList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	case *corev1.ConfigMapList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	default:
		return nil, fmt.Errorf("unexpected list %T", list)
	}
	return out, nil
}

// TestClusterOwnsWhatItMakes: envtest runs no garbage collector, so the test asserts what
// deletion relies on: every object the reconciler makes for a KafscaleCluster (brokers, HPA,
// snapshot CronJob, managed etcd with its restore init container) carries a controller
// reference to it with blockOwnerDeletion, and nothing else in the namespace points at it.
// Deleting the cluster is not held up by a finalizer, and its metadata stays in etcd (the
// documented default: re-creating the cluster finds its topics and offsets).
func TestClusterOwnsWhatItMakes(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()
	c := e.c
	create(t, c, credentialsSecret("s3-creds", e.s3.AccessKey, e.s3.SecretKey))
	cfg := e.operatorConfig(t, "op-a", "/test/"+randomKey()+"/leader")
	cfg.EtcdEndpoints = nil // managed etcd for clusters without spec.etcd.endpoints; the lock stays on the test etcd
	cfg.OperatorImage, cfg.SnapshotSchedule = "ghcr.io/kafscale/operator:test", "0 * * * *"
	e.startOperator(t, cfg)

	managed := e.cluster("managed", "s3-creds")
	managed.Spec.Brokers.Autoscaling = &v1alpha1.BrokerAutoscalingSpec{MaxReplicas: 4}
	create(t, c, managed)
	external := e.cluster("external", "s3-creds")
	external.Spec.Etcd.Endpoints = e.etcd.Endpoints()
	create(t, c, external)

	want := map[string]string{} // Kind/name → owning cluster
	for _, n := range []string{"managed", "external"} {
		for _, obj := range []string{"Deployment/%s-broker", "Service/%s-broker", "Service/%s-broker-headless", "PodDisruptionBudget/%s-broker", "CronJob/%s-etcd-snapshot"} {
			want[fmt.Sprintf(obj, n)] = n
		}
	}
	for _, obj := range []string{"HorizontalPodAutoscaler/managed-broker", "StatefulSet/managed-etcd", "Service/managed-etcd", "Service/managed-etcd-peer", "PodDisruptionBudget/managed-etcd"} {
		want[obj] = "managed"
	}
	var got map[string]*metav1.OwnerReference
	eventually(t, "every owned object", func() error {
		got = owned(t, c)
		var missing []string
		for obj := range want {
			if _, ok := got[obj]; !ok {
				missing = append(missing, obj)
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			return fmt.Errorf("missing %v", missing)
		}
		return nil
	})
	uids := map[string]string{}
	for _, n := range []string{"managed", "external"} {
		var kc v1alpha1.KafscaleCluster
		if err := get(t, c, n, &kc); err != nil {
			t.Fatal(err)
		}
		uids[n] = string(kc.UID)
	}
	names := make([]string, 0, len(got))
	for obj := range got {
		names = append(names, obj)
	}
	sort.Strings(names)
	for _, obj := range names {
		ref := got[obj]
		owner, ok := want[obj]
		if !ok {
			t.Errorf("%s: made in the namespace but not expected (owner %+v)", obj, ref)
			continue
		}
		if ref == nil || ref.APIVersion != v1alpha1.GroupVersion.String() || ref.Kind != "KafscaleCluster" || ref.Name != owner ||
			string(ref.UID) != uids[owner] || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion || ref.Controller == nil || !*ref.Controller {
			t.Errorf("%s: controller reference %+v, want KafscaleCluster %s (uid %s) with blockOwnerDeletion", obj, ref, owner, uids[owner])
		}
	}
	t.Logf("%d objects, each owned by its KafscaleCluster: %v", len(names), names)

	var sts appsv1.StatefulSet
	if err := get(t, c, "managed-etcd", &sts); err != nil {
		t.Fatal(err)
	}
	if inits := sts.Spec.Template.Spec.InitContainers; len(inits) != 1 || inits[0].Name != "etcd-restore" || inits[0].Image != cfg.OperatorImage {
		t.Errorf("managed etcd init containers %+v", inits)
	}
	clusterCondition(t, c, "external", v1alpha1.ConditionEtcdSnapshotScheduled, metav1.ConditionTrue)

	// Deletion: nothing holds the cluster back, and its etcd data stays.
	clusterCondition(t, c, "external", v1alpha1.ConditionEtcdAvailable, metav1.ConditionTrue)
	key := metadata.Keys{Namespace: namespace, Cluster: "external"}.Metadata()
	before, err := e.etcd.Client().Get(ctx, key)
	if err != nil || len(before.Kvs) != 1 {
		t.Fatalf("metadata of external before deletion: %v %v", before, err)
	}
	for _, n := range []string{"external", "managed"} {
		var kc v1alpha1.KafscaleCluster
		if err := get(t, c, n, &kc); err != nil {
			t.Fatal(err)
		}
		if len(kc.Finalizers) != 0 {
			t.Errorf("%s carries finalizers %v", n, kc.Finalizers)
		}
		if err := c.Delete(ctx, &kc); err != nil {
			t.Fatal(err)
		}
		eventually(t, n+" deleted", func() error {
			if err := get(t, c, n, &kc); !apierrors.IsNotFound(err) {
				return fmt.Errorf("still there (%v), finalizers %v", err, kc.Finalizers)
			}
			return nil
		})
	}
	after, err := e.etcd.Client().Get(ctx, key)
	if err != nil || len(after.Kvs) != 1 || string(after.Kvs[0].Value) != string(before.Kvs[0].Value) {
		t.Errorf("metadata of the deleted cluster: %v %v, want it kept", after, err)
	}
}

// TestNoOperatorImage: KAFSCALE_OPERATOR_IMAGE unset and the operator's own pod not found
// (here it runs outside any pod): no snapshot CronJob, the condition
// EtcdSnapshotScheduled=False says why and what to set, and the rest of the reconcile is
// fine (Ready once the brokers are). The managed etcd's StatefulSet then has no restore init
// container (TestEtcdRestoreInitContainer).
func TestNoOperatorImage(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()
	c := e.c
	create(t, c, credentialsSecret("s3-creds", e.s3.AccessKey, e.s3.SecretKey))
	cfg := e.operatorConfig(t, "op-not-a-pod", "/test/"+randomKey()+"/leader")
	cfg.OperatorImage = ""
	e.startOperator(t, cfg)
	kc := e.cluster("noimage", "s3-creds")
	create(t, c, kc)

	got := clusterCondition(t, c, "noimage", v1alpha1.ConditionEtcdSnapshotScheduled, metav1.ConditionFalse)
	for _, cond := range got.Status.Conditions {
		if cond.Type == v1alpha1.ConditionEtcdSnapshotScheduled {
			if cond.Reason != "OperatorImageUnknown" || !strings.Contains(cond.Message, "set KAFSCALE_OPERATOR_IMAGE") {
				t.Errorf("condition %+v", cond)
			}
			t.Logf("%s=%s %s: %s", cond.Type, cond.Status, cond.Reason, cond.Message)
		}
	}
	var cj batchv1.CronJob
	if err := get(t, c, "noimage-etcd-snapshot", &cj); !apierrors.IsNotFound(err) {
		t.Errorf("snapshot CronJob without an operator image: %v", err)
	}

	var deploy appsv1.Deployment
	eventually(t, "broker Deployment", func() error { return get(t, c, "noimage-broker", &deploy) })
	before := deploy.DeepCopy()
	deploy.Status = appsv1.DeploymentStatus{ObservedGeneration: deploy.Generation, Replicas: 3, ReadyReplicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3}
	if err := c.Status().Patch(ctx, &deploy, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
	ready := clusterCondition(t, c, "noimage", v1alpha1.ConditionReady, metav1.ConditionTrue)
	for _, typ := range []string{v1alpha1.ConditionEtcdAvailable, v1alpha1.ConditionEtcdSnapshotAccess, v1alpha1.ConditionBrokersReady} {
		if st, reason := condition(ready.Status.Conditions, typ); st != metav1.ConditionTrue {
			t.Errorf("%s = %s (%s) without an operator image", typ, st, reason)
		}
	}
	if err := get(t, c, "noimage-etcd-snapshot", &cj); !apierrors.IsNotFound(err) {
		t.Errorf("snapshot CronJob after further reconciles: %v", err)
	}
}
