package controller

import (
	"context"
	"reflect"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/kafscale/kafscale/operator/api/v1alpha1"
)

// unreachableEtcd is an etcd endpoint nothing listens on: the reconcilers' etcd work fails
// there, which these tests use to see the failure reported, without an etcd.
const unreachableEtcd = "http://127.0.0.1:1"

func fakeScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

func fakeClient(t *testing.T, objs ...client.Object) client.Client {
	t.Helper()
	return fake.NewClientBuilder().WithScheme(fakeScheme(t)).WithObjects(objs...).
		WithStatusSubresource(&v1alpha1.KafscaleCluster{}, &v1alpha1.KafscaleTopic{}).Build()
}

// boundedContext bounds a reconcile whose etcd is unreachable; it asserts nothing about speed.
func boundedContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// The cluster reconciler creates the broker objects its pure builders describe, owned by the
// cluster, and reports an etcd it cannot reach in the status (not Ready) and as an error, so
// controller-runtime retries.
func TestClusterReconcilerAppliesTheBuildersAndReportsEtcd(t *testing.T) {
	c := newCluster(withReplicas(3), func(c *v1alpha1.KafscaleCluster) { c.Spec.Etcd.Endpoints = []string{unreachableEtcd} })
	c.UID = "cluster-uid"
	cli := fakeClient(t, c)
	in := testInputs()
	in.Config.BrokerEnvConfigMap = ""
	in.EtcdEndpoints = []string{unreachableEtcd}
	pool := NewEtcdPool()
	defer pool.Close()
	r := &ClusterReconciler{Client: cli, Scheme: fakeScheme(t), Config: in.Config, Etcd: pool}
	ctx := boundedContext(t)
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: c.Namespace, Name: c.Name}}); err == nil {
		t.Fatal("Reconcile with an unreachable etcd returned no error")
	}

	want := BrokerDeployment(c, in)
	var got appsv1.Deployment
	if err := cli.Get(ctx, client.ObjectKeyFromObject(want), &got); err != nil {
		t.Fatalf("broker Deployment: %v", err)
	}
	if got.Spec.Replicas == nil || *got.Spec.Replicas != 3 {
		t.Errorf("replicas %v, want 3", got.Spec.Replicas)
	}
	if len(got.Spec.Template.Spec.Containers) != 1 || got.Spec.Template.Spec.Containers[0].Image != in.Config.BrokerImage {
		t.Errorf("containers %+v, want the broker image %s", got.Spec.Template.Spec.Containers, in.Config.BrokerImage)
	}
	if gotEnv, wantEnv := envMap(got.Spec.Template.Spec.Containers[0].Env), envMap(want.Spec.Template.Spec.Containers[0].Env); len(gotEnv) != len(wantEnv) {
		t.Errorf("%d env vars, want the builder's %d", len(gotEnv), len(wantEnv))
	} else {
		for name, e := range wantEnv {
			if !reflect.DeepEqual(gotEnv[name], e) {
				t.Errorf("env %s = %+v, want %+v", name, gotEnv[name], e)
			}
		}
	}
	if owners := got.OwnerReferences; len(owners) != 1 || owners[0].UID != c.UID || owners[0].Controller == nil || !*owners[0].Controller {
		t.Errorf("owner references %+v, want the cluster as controller", owners)
	}
	headless, clientSvc := BrokerServices(c)
	for _, svc := range []*corev1.Service{headless, clientSvc} {
		var s corev1.Service
		if err := cli.Get(ctx, client.ObjectKeyFromObject(svc), &s); err != nil {
			t.Errorf("Service %s: %v", svc.Name, err)
		}
	}
	var pdb policyv1.PodDisruptionBudget
	if err := cli.Get(ctx, client.ObjectKeyFromObject(BrokerPDB(c)), &pdb); err != nil {
		t.Errorf("PodDisruptionBudget: %v", err)
	}

	var status v1alpha1.KafscaleCluster
	if err := cli.Get(ctx, client.ObjectKeyFromObject(c), &status); err != nil {
		t.Fatal(err)
	}
	if cond := apimeta.FindStatusCondition(status.Status.Conditions, v1alpha1.ConditionEtcdAvailable); cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != "EtcdUnavailable" {
		t.Errorf("EtcdAvailable condition %+v, want False/EtcdUnavailable", cond)
	}
	if cond := apimeta.FindStatusCondition(status.Status.Conditions, v1alpha1.ConditionReady); cond == nil || cond.Status != metav1.ConditionFalse {
		t.Errorf("Ready condition %+v, want False", cond)
	}
	if len(status.Status.EtcdEndpoints) != 1 || status.Status.EtcdEndpoints[0] != unreachableEtcd {
		t.Errorf("status etcd endpoints %v", status.Status.EtcdEndpoints)
	}
}

// A cluster that is gone is not an error: there is nothing left to reconcile.
func TestClusterReconcilerIgnoresAMissingCluster(t *testing.T) {
	r := &ClusterReconciler{Client: fakeClient(t), Scheme: fakeScheme(t), Config: testInputs().Config, Etcd: NewEtcdPool()}
	defer r.Etcd.Close()
	res, err := r.Reconcile(boundedContext(t), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "kafscale", Name: "gone"}})
	if err != nil || res.RequeueAfter != 0 {
		t.Fatalf("Reconcile of a missing cluster = %+v, %v; want nothing to do", res, err)
	}
}

// A broker Deployment made by an older operator (a 65 s minReadySeconds and no readiness
// gate, or neither) gets the rolling-update settings of this one when the cluster is
// reconciled: an upgrade rolls its brokers one drain at a time, with no wait beyond the
// drains (TestBrokerRollOneDrainAtATime).
func TestClusterReconcilerUpdatesTheRollSettingsOfAnOlderDeployment(t *testing.T) {
	c := newCluster(withReplicas(3), func(c *v1alpha1.KafscaleCluster) { c.Spec.Etcd.Endpoints = []string{unreachableEtcd} })
	c.UID = "cluster-uid"
	in := testInputs()
	in.Config.BrokerEnvConfigMap = ""
	in.EtcdEndpoints = []string{unreachableEtcd}
	older := BrokerDeployment(c, in)
	older.Spec.MinReadySeconds = 65
	older.Spec.Template.Spec.ReadinessGates = nil
	older.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType}
	cli := fakeClient(t, c, older)
	pool := NewEtcdPool()
	defer pool.Close()
	r := &ClusterReconciler{Client: cli, Scheme: fakeScheme(t), Config: in.Config, Etcd: pool}
	ctx := boundedContext(t)
	_, _ = r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: c.Namespace, Name: c.Name}}) // etcd unreachable: an error, after the Deployment
	var got appsv1.Deployment
	if err := cli.Get(ctx, client.ObjectKeyFromObject(older), &got); err != nil {
		t.Fatalf("broker Deployment: %v", err)
	}
	if got.Spec.MinReadySeconds != 0 {
		t.Errorf("minReadySeconds %d after the reconcile, want 0", got.Spec.MinReadySeconds)
	}
	if g := got.Spec.Template.Spec.ReadinessGates; len(g) != 1 || g[0].ConditionType != DrainTurnGate {
		t.Errorf("readiness gates %+v after the reconcile, want %s", g, DrainTurnGate)
	}
	if ru := got.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxSurge.IntValue() != 1 || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("strategy %+v, want maxSurge 1, maxUnavailable 0", got.Spec.Strategy)
	}
}
