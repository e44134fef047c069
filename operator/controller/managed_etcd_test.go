package controller

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"github.com/kafscale/kafscale/operator/api/v1alpha1"
	"github.com/kafscale/kafscale/operator/config"
)

func TestEtcdEndpointsResolution(t *testing.T) {
	cases := []struct {
		name     string
		spec     []string
		operator []string
		want     string
		managed  bool
	}{
		{"spec wins", []string{"http://spec:2379"}, []string{"http://op:2379"}, "http://spec:2379", false},
		{"operator default", nil, []string{"http://op:2379"}, "http://op:2379", false},
		{"managed", nil, nil, "http://prod-etcd.kafscale.svc:2379", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(func(c *v1alpha1.KafscaleCluster) { c.Spec.Etcd.Endpoints = tc.spec })
			got, managed := EtcdEndpoints(c, &config.Operator{EtcdEndpoints: tc.operator})
			if strings.Join(got, ",") != tc.want || managed != tc.managed {
				t.Errorf("got %v managed=%v", got, managed)
			}
		})
	}
}

func TestEtcdStatefulSet(t *testing.T) {
	cases := []struct {
		name  string
		opts  []clusterOption
		class *string
		size  string
	}{
		{"defaults", nil, nil, "10Gi"},
		{"storage", []clusterOption{func(c *v1alpha1.KafscaleCluster) {
			c.Spec.Etcd.Storage = v1alpha1.EtcdStorageSpec{StorageClassName: ptr.To("fast"), Size: ptr.To(resource.MustParse("50Gi"))}
		}}, ptr.To("fast"), "50Gi"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(tc.opts...)
			s := EtcdStatefulSet(c, "etcd:v3.6")
			if s.Name != "prod-etcd" || *s.Spec.Replicas != 3 || s.Spec.ServiceName != "prod-etcd-peer" {
				t.Errorf("statefulset %s replicas %d service %s", s.Name, *s.Spec.Replicas, s.Spec.ServiceName)
			}
			pvc := s.Spec.VolumeClaimTemplates[0].Spec
			if got := pvc.Resources.Requests[corev1.ResourceStorage]; got.String() != tc.size || !equalPtr(pvc.StorageClassName, tc.class) {
				t.Errorf("pvc size %s class %v", got.String(), pvc.StorageClassName)
			}
			pod := s.Spec.Template.Spec
			if pod.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.TopologyKey != "kubernetes.io/hostname" ||
				pod.TopologySpreadConstraints[0].TopologyKey != "topology.kubernetes.io/zone" {
				t.Errorf("spreading %+v %+v", pod.Affinity, pod.TopologySpreadConstraints)
			}
			args := strings.Join(pod.Containers[0].Command, " ")
			for _, want := range []string{
				"--initial-cluster=prod-etcd-0=http://prod-etcd-0.prod-etcd-peer.kafscale.svc:2380,prod-etcd-1=http://prod-etcd-1.prod-etcd-peer.kafscale.svc:2380,prod-etcd-2=http://prod-etcd-2.prod-etcd-peer.kafscale.svc:2380",
				"--advertise-client-urls=http://$(POD_NAME).prod-etcd-peer.kafscale.svc:2379",
				"--data-dir=/var/lib/etcd/data",
			} {
				if !strings.Contains(args, want) {
					t.Errorf("command lacks %s: %s", want, args)
				}
			}
		})
	}
}

func equalPtr[T comparable](a, b *T) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

func TestEtcdServicesAndPDB(t *testing.T) {
	c := newCluster()
	peer, client := EtcdServices(c)
	if peer.Spec.ClusterIP != corev1.ClusterIPNone || !peer.Spec.PublishNotReadyAddresses || client.Name != "prod-etcd" || client.Spec.Ports[0].Port != 2379 {
		t.Errorf("peer %+v client %+v", peer.Spec, client.Spec)
	}
	if pdb := EtcdPDB(c); pdb.Spec.MinAvailable.IntVal != 2 {
		t.Errorf("pdb %+v", pdb.Spec)
	}
}
