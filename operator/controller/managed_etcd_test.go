package controller

import (
	"slices"
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
	specStorage := func(c *v1alpha1.KafscaleCluster) {
		c.Spec.Etcd.Storage = v1alpha1.EtcdStorageSpec{StorageClassName: ptr.To("fast"), Size: ptr.To(resource.MustParse("50Gi"))}
	}
	// The operator's defaults (KAFSCALE_OPERATOR_ETCD_STORAGE_SIZE and _CLASS).
	operatorDefaults := &config.Operator{EtcdImage: "etcd:v3.6", EtcdStorageSize: resource.MustParse("20Gi"), EtcdStorageClass: "ssd"}
	cases := []struct {
		name  string
		opts  []clusterOption
		cfg   *config.Operator
		class *string
		size  string
	}{
		{"defaults", nil, nil, nil, "10Gi"},
		{"storage", []clusterOption{specStorage}, nil, ptr.To("fast"), "50Gi"},
		{"operator defaults", nil, operatorDefaults, ptr.To("ssd"), "20Gi"},
		{"spec over operator defaults", []clusterOption{specStorage}, operatorDefaults, ptr.To("fast"), "50Gi"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(tc.opts...)
			cfg := tc.cfg
			if cfg == nil {
				cfg = &config.Operator{EtcdImage: "etcd:v3.6"}
			}
			s := EtcdStatefulSet(c, cfg)
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

// The restore init container: the operator's image running etcd-restore with exactly the
// member flags etcd runs with, the data volume, the snapshot bucket's settings, credentials
// only as secretKeyRefs, and a restricted security context. Without a known operator image
// there is none.
func TestEtcdRestoreInitContainer(t *testing.T) {
	cfg := &config.Operator{EtcdImage: "etcd:v3.6", OperatorImage: "ghcr.io/kafscale/operator:0.1.0", SnapshotPrefix: "etcd-snapshots", ImagePullSecrets: []string{"regcred"}}
	cases := []struct {
		name   string
		opts   []clusterOption
		secret bool
	}{
		{"pod identity", nil, false},
		{"credentials secret", []clusterOption{withCredentials("s3-creds"), func(c *v1alpha1.KafscaleCluster) {
			c.Spec.S3.Endpoint, c.Spec.S3.PathStyle = "http://minio:9000", true
		}}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(tc.opts...)
			pod := EtcdStatefulSet(c, cfg).Spec.Template.Spec
			if len(pod.InitContainers) != 1 {
				t.Fatalf("init containers %+v", pod.InitContainers)
			}
			init, etcd := pod.InitContainers[0], pod.Containers[0]
			if init.Name != "etcd-restore" || init.Image != cfg.OperatorImage || init.Args[0] != "etcd-restore" {
				t.Errorf("init container %s image %s args %v", init.Name, init.Image, init.Args)
			}
			// Every member flag etcd-restore gets is one etcd runs with.
			for _, flag := range []string{"--name=", "--data-dir=", "--initial-advertise-peer-urls=", "--initial-cluster=", "--initial-cluster-token="} {
				i := slices.IndexFunc(init.Args, func(a string) bool { return strings.HasPrefix(a, flag) })
				if i < 0 || !slices.Contains(etcd.Command, init.Args[i]) {
					t.Errorf("etcd-restore flag %s: %v not in etcd's command %v", flag, init.Args, etcd.Command)
				}
			}
			if !slices.Contains(init.Args, "--member-client-urls=prod-etcd-0=http://prod-etcd-0.prod-etcd-peer.kafscale.svc:2379,prod-etcd-1=http://prod-etcd-1.prod-etcd-peer.kafscale.svc:2379,prod-etcd-2=http://prod-etcd-2.prod-etcd-peer.kafscale.svc:2379") {
				t.Errorf("member client URLs: %v", init.Args)
			}
			if len(init.VolumeMounts) != 1 || init.VolumeMounts[0].Name != "data" || init.VolumeMounts[0].MountPath != etcd.VolumeMounts[0].MountPath {
				t.Errorf("volume mounts %+v, etcd's %+v", init.VolumeMounts, etcd.VolumeMounts)
			}
			env := envMap(init.Env)
			if env["POD_NAME"].ValueFrom.FieldRef.FieldPath != "metadata.name" {
				t.Errorf("POD_NAME %+v", env["POD_NAME"])
			}
			for k, v := range map[string]string{"KAFSCALE_SNAPSHOT_S3_BUCKET": "kafscale-etcd-kafscale-prod", "KAFSCALE_SNAPSHOT_S3_REGION": "eu-west-1",
				"KAFSCALE_SNAPSHOT_S3_ENDPOINT": c.Spec.S3.Endpoint, "KAFSCALE_SNAPSHOT_PREFIX": "etcd-snapshots/kafscale/prod/"} {
				if env[k].Value != v {
					t.Errorf("%s = %q, want %q", k, env[k].Value, v)
				}
			}
			for _, e := range init.Env {
				if (strings.HasPrefix(e.Name, "AWS_") || strings.HasPrefix(e.Name, "KAFSCALE_S3_")) && (e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil ||
					e.ValueFrom.SecretKeyRef.Name != "s3-creds" || e.ValueFrom.SecretKeyRef.Key != e.Name) {
					t.Errorf("credential %s is not a secretKeyRef to s3-creds: %+v", e.Name, e)
				}
			}
			for _, key := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "KAFSCALE_S3_ACCESS_KEY", "KAFSCALE_S3_SECRET_KEY"} {
				if _, ok := env[key]; ok != tc.secret {
					t.Errorf("%s present %v, want %v", key, ok, tc.secret)
				}
			}
			sc := init.SecurityContext
			if sc == nil || !*sc.RunAsNonRoot || *sc.AllowPrivilegeEscalation || !*sc.ReadOnlyRootFilesystem ||
				!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("init security context %+v", sc)
			}
			if *pod.AutomountServiceAccountToken || pod.EnableServiceLinks == nil || *pod.EnableServiceLinks || len(pod.ImagePullSecrets) != 1 || pod.ImagePullSecrets[0].Name != "regcred" {
				t.Errorf("token %v pull secrets %+v", *pod.AutomountServiceAccountToken, pod.ImagePullSecrets)
			}
		})
	}

	unknown := *cfg
	unknown.OperatorImage = ""
	if pod := EtcdStatefulSet(newCluster(), &unknown).Spec.Template.Spec; len(pod.InitContainers) != 0 {
		t.Errorf("init container without an operator image: %+v", pod.InitContainers)
	}
}
