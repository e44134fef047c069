package v1alpha1

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestSchemeKnowsEveryKind(t *testing.T) {
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"KafscaleCluster", "KafscaleClusterList", "KafscaleTopic", "KafscaleTopicList"} {
		if !s.Recognizes(GroupVersion.WithKind(kind)) {
			t.Errorf("scheme does not know %s", kind)
		}
	}
}

func TestDeepCopyIsIndependent(t *testing.T) {
	replicas := int32(3)
	c := &KafscaleCluster{
		Spec: KafscaleClusterSpec{
			Brokers: BrokerSpec{Replicas: &replicas, Service: BrokerServiceSpec{Annotations: map[string]string{"a": "b"}}},
			Etcd:    EtcdSpec{Endpoints: []string{"http://etcd:2379"}},
		},
		Status: KafscaleClusterStatus{Conditions: []metav1.Condition{{Type: ConditionReady, Status: metav1.ConditionTrue}}},
	}
	cp := c.DeepCopyObject().(*KafscaleCluster)
	*cp.Spec.Brokers.Replicas = 5
	cp.Spec.Brokers.Service.Annotations["a"] = "changed"
	cp.Spec.Etcd.Endpoints[0] = "changed"
	cp.Status.Conditions[0].Status = metav1.ConditionFalse
	if *c.Spec.Brokers.Replicas != 3 || c.Spec.Brokers.Service.Annotations["a"] != "b" ||
		c.Spec.Etcd.Endpoints[0] != "http://etcd:2379" || c.Status.Conditions[0].Status != metav1.ConditionTrue {
		t.Fatalf("deep copy shares memory with the original: %+v", c)
	}
}
