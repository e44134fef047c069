package operator_test

import (
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kafscale/kafscale/operator/api/v1alpha1"
)

// TestManagedEtcd: without spec.etcd.endpoints and KAFSCALE_OPERATOR_ETCD_ENDPOINTS the
// operator makes a 3-member etcd StatefulSet, its Services and PDB, points the brokers at
// <cluster>-etcd, and reports EtcdAvailable=False while no member runs (envtest runs no pods).
func TestManagedEtcd(t *testing.T) {
	e := startEnv(t)
	c := e.c
	create(t, c, credentialsSecret("s3-creds", e.s3.AccessKey, e.s3.SecretKey))
	cfg := e.operatorConfig(t, "op-a", "/test/"+randomKey()+"/leader")
	cfg.EtcdEndpoints = nil // the leader lock stays on the test etcd (LeaderEtcdEndpoints)
	e.startOperator(t, cfg)
	create(t, c, e.cluster("managed", "s3-creds"))

	var sts appsv1.StatefulSet
	var peer, client corev1.Service
	var pdb policyv1.PodDisruptionBudget
	eventually(t, "managed etcd objects", func() error {
		if err := get(t, c, "managed-etcd", &sts); err != nil {
			return err
		}
		if err := get(t, c, "managed-etcd-peer", &peer); err != nil {
			return err
		}
		if err := get(t, c, "managed-etcd", &client); err != nil {
			return err
		}
		return get(t, c, "managed-etcd", &pdb)
	})
	if *sts.Spec.Replicas != 3 || sts.Spec.ServiceName != "managed-etcd-peer" || sts.Spec.Template.Spec.Containers[0].Image != cfg.EtcdImage ||
		sts.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests.Storage().String() != "10Gi" {
		t.Errorf("statefulset %+v", sts.Spec)
	}
	if ref := metav1.GetControllerOf(&sts); ref == nil || ref.Name != "managed" {
		t.Errorf("statefulset owner %+v", ref)
	}
	if peer.Spec.ClusterIP != corev1.ClusterIPNone || client.Spec.Ports[0].Port != 2379 || pdb.Spec.MinAvailable.IntVal != 2 {
		t.Errorf("peer %+v client %+v pdb %+v", peer.Spec, client.Spec, pdb.Spec)
	}
	eventually(t, "brokers use the managed etcd", func() error {
		var d appsv1.Deployment
		if err := get(t, c, "managed-broker", &d); err != nil {
			return err
		}
		for _, v := range d.Spec.Template.Spec.Containers[0].Env {
			if v.Name == "KAFSCALE_ETCD_ENDPOINTS" && v.Value == "http://managed-etcd.kafscale.svc:2379" {
				return nil
			}
		}
		return fmt.Errorf("env %+v", d.Spec.Template.Spec.Containers[0].Env)
	})
	kc := clusterCondition(t, c, "managed", v1alpha1.ConditionEtcdAvailable, metav1.ConditionFalse)
	if st, _ := condition(kc.Status.Conditions, v1alpha1.ConditionReady); st != metav1.ConditionFalse {
		t.Errorf("Ready = %s without etcd", st)
	}
}
