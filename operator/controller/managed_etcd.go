package controller

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kafscale/kafscale/operator/api/v1alpha1"
	"github.com/kafscale/kafscale/operator/config"
)

// Managed etcd: a 3-member StatefulSet <cluster>-etcd, its peer Service
// <cluster>-etcd-peer (headless, stable member DNS names) and client Service <cluster>-etcd
// (what brokers, the proxy and the console use), and a PDB keeping quorum.
const (
	etcdMembers    = 3
	etcdClientPort = 2379
	etcdPeerPort   = 2380
	etcdDataDir    = "/var/lib/etcd"
)

func etcdSelector(c *v1alpha1.KafscaleCluster) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":      "kafscale-etcd",
		"app.kubernetes.io/instance":  c.Name,
		"app.kubernetes.io/component": "etcd",
	}
}

func etcdLabels(c *v1alpha1.KafscaleCluster) map[string]string {
	l := etcdSelector(c)
	l["app.kubernetes.io/part-of"] = "kafscale"
	l["app.kubernetes.io/managed-by"] = "kafscale-operator"
	return l
}

// EtcdPeerServiceName is the headless Service giving members stable DNS names.
func EtcdPeerServiceName(c *v1alpha1.KafscaleCluster) string { return c.Name + "-etcd-peer" }

// etcdInitialCluster lists every member's peer URL.
func etcdInitialCluster(c *v1alpha1.KafscaleCluster) string {
	members := make([]string, etcdMembers)
	for i := range members {
		name := fmt.Sprintf("%s-%d", EtcdServiceName(c), i)
		members[i] = fmt.Sprintf("%s=http://%s.%s.%s.svc:%d", name, name, EtcdPeerServiceName(c), c.Namespace, etcdPeerPort)
	}
	return strings.Join(members, ",")
}

// etcdMemberFlags identify a member to etcd, and to etcd-restore, which must restore the
// member exactly as etcd will run it.
func etcdMemberFlags(c *v1alpha1.KafscaleCluster) []string {
	peerDomain := fmt.Sprintf("$(POD_NAME).%s.%s.svc", EtcdPeerServiceName(c), c.Namespace)
	return []string{
		"--name=$(POD_NAME)",
		"--data-dir=" + etcdDataDir + "/data",
		fmt.Sprintf("--initial-advertise-peer-urls=http://%s:%d", peerDomain, etcdPeerPort),
		"--initial-cluster=" + etcdInitialCluster(c),
		"--initial-cluster-token=" + c.Namespace + "-" + c.Name,
	}
}

// etcdMemberClientURLs lists every member's client URL as name=url.
func etcdMemberClientURLs(c *v1alpha1.KafscaleCluster) string {
	members := make([]string, etcdMembers)
	for i := range members {
		name := fmt.Sprintf("%s-%d", EtcdServiceName(c), i)
		members[i] = fmt.Sprintf("%s=http://%s.%s.%s.svc:%d", name, name, EtcdPeerServiceName(c), c.Namespace, etcdClientPort)
	}
	return strings.Join(members, ",")
}

var podNameEnv = corev1.EnvVar{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}

// etcdRestoreContainer is the init container that restores the newest snapshot of the
// cluster into a member whose data dir is empty (`operator etcd-restore`, the operator's
// own image: the etcd image has no S3 client). It reads the bucket and credentials the
// snapshot CronJob writes with.
func etcdRestoreContainer(c *v1alpha1.KafscaleCluster, cfg *config.Operator) corev1.Container {
	args := append([]string{"etcd-restore"}, etcdMemberFlags(c)...)
	args = append(args, "--member-client-urls="+etcdMemberClientURLs(c))
	return corev1.Container{
		Name:            "etcd-restore",
		Image:           cfg.OperatorImage,
		Args:            args,
		Env:             append([]corev1.EnvVar{podNameEnv}, snapshotS3Env(c, cfg)...),
		SecurityContext: restrictedContainerSecurity(),
		VolumeMounts:    []corev1.VolumeMount{{Name: "data", MountPath: etcdDataDir}},
	}
}

// EtcdStatefulSet builds the managed etcd members. With the operator's image known
// (KAFSCALE_OPERATOR_IMAGE or its own pod's), each member restores the newest snapshot into
// an empty data dir before etcd starts.
func EtcdStatefulSet(c *v1alpha1.KafscaleCluster, cfg *config.Operator) *appsv1.StatefulSet {
	peerDomain := fmt.Sprintf("$(POD_NAME).%s.%s.svc", EtcdPeerServiceName(c), c.Namespace)
	// The spec wins; then the operator's defaults (KAFSCALE_OPERATOR_ETCD_STORAGE_SIZE and
	// _CLASS); then 10Gi and the cluster's default class.
	size := cfg.EtcdStorageSize
	if size.IsZero() {
		size = resource.MustParse(config.DefaultEtcdStorageSize)
	}
	if s := c.Spec.Etcd.Storage.Size; s != nil {
		size = *s
	}
	class := c.Spec.Etcd.Storage.StorageClassName
	if class == nil && cfg.EtcdStorageClass != "" {
		class = &cfg.EtcdStorageClass
	}
	container := corev1.Container{
		Name:  "etcd",
		Image: cfg.EtcdImage,
		Command: append(append([]string{"etcd"}, etcdMemberFlags(c)...),
			fmt.Sprintf("--listen-client-urls=http://0.0.0.0:%d", etcdClientPort),
			fmt.Sprintf("--advertise-client-urls=http://%s:%d", peerDomain, etcdClientPort),
			fmt.Sprintf("--listen-peer-urls=http://0.0.0.0:%d", etcdPeerPort),
			"--initial-cluster-state=new",
			"--listen-metrics-urls=http://0.0.0.0:2381",
			// Every flush rewrites each flushed partition's state document (up to ~10 KB), so
			// history grows by about 1 MB/s on a busy cluster (64 partitions, 500 ms flushes):
			// five minutes of it stays far below the 2 GiB backend quota; an hour would not.
			"--auto-compaction-mode=periodic",
			"--auto-compaction-retention=5m",
		),
		Env: []corev1.EnvVar{podNameEnv},
		Ports: []corev1.ContainerPort{
			{Name: "client", ContainerPort: etcdClientPort, Protocol: corev1.ProtocolTCP},
			{Name: "peer", ContainerPort: etcdPeerPort, Protocol: corev1.ProtocolTCP},
			{Name: "metrics", ContainerPort: 2381, Protocol: corev1.ProtocolTCP},
		},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromString("metrics")}},
			PeriodSeconds: 5,
		},
		LivenessProbe: &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/livez", Port: intstr.FromString("metrics")}},
			PeriodSeconds:    10,
			FailureThreshold: 6,
		},
		SecurityContext: restrictedContainerSecurity(),
		VolumeMounts:    []corev1.VolumeMount{{Name: "data", MountPath: etcdDataDir}},
	}
	var initContainers []corev1.Container
	if cfg.OperatorImage != "" {
		initContainers = []corev1.Container{etcdRestoreContainer(c, cfg)}
	}
	var pullSecrets []corev1.LocalObjectReference
	for _, s := range cfg.ImagePullSecrets {
		pullSecrets = append(pullSecrets, corev1.LocalObjectReference{Name: s})
	}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: EtcdServiceName(c), Namespace: c.Namespace, Labels: etcdLabels(c)},
		Spec: appsv1.StatefulSetSpec{
			Replicas:            ptr.To[int32](etcdMembers),
			ServiceName:         EtcdPeerServiceName(c),
			PodManagementPolicy: appsv1.ParallelPodManagement, // members must start together to form quorum
			Selector:            &metav1.LabelSelector{MatchLabels: etcdSelector(c)},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: etcdLabels(c)},
				Spec: corev1.PodSpec{
					InitContainers:               initContainers,
					Containers:                   []corev1.Container{container},
					ImagePullSecrets:             pullSecrets,
					AutomountServiceAccountToken: ptr.To(false),
					EnableServiceLinks:           ptr.To(false), // see BrokerDeployment
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532), FSGroup: ptr.To[int64](65532),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
						PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
							Weight: 100,
							PodAffinityTerm: corev1.PodAffinityTerm{
								TopologyKey:   "kubernetes.io/hostname",
								LabelSelector: &metav1.LabelSelector{MatchLabels: etcdSelector(c)},
							},
						}},
					}},
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew:           1,
						TopologyKey:       "topology.kubernetes.io/zone",
						WhenUnsatisfiable: corev1.ScheduleAnyway,
						LabelSelector:     &metav1.LabelSelector{MatchLabels: etcdSelector(c)},
					}},
				},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data", Labels: etcdLabels(c)},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					StorageClassName: class,
					Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
				},
			}},
		},
	}
}

// EtcdServices builds the peer (headless) and client Services of the managed etcd.
func EtcdServices(c *v1alpha1.KafscaleCluster) (peer, client *corev1.Service) {
	peer = &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: EtcdPeerServiceName(c), Namespace: c.Namespace, Labels: etcdLabels(c)},
		Spec: corev1.ServiceSpec{
			ClusterIP:                corev1.ClusterIPNone,
			PublishNotReadyAddresses: true, // members find each other before they are ready
			Selector:                 etcdSelector(c),
			Ports: []corev1.ServicePort{
				{Name: "client", Port: etcdClientPort, TargetPort: intstr.FromString("client"), Protocol: corev1.ProtocolTCP},
				{Name: "peer", Port: etcdPeerPort, TargetPort: intstr.FromString("peer"), Protocol: corev1.ProtocolTCP},
			},
		},
	}
	client = &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: EtcdServiceName(c), Namespace: c.Namespace, Labels: etcdLabels(c)},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: etcdSelector(c),
			Ports:    []corev1.ServicePort{{Name: "client", Port: etcdClientPort, TargetPort: intstr.FromString("client"), Protocol: corev1.ProtocolTCP}},
		},
	}
	return peer, client
}

// EtcdPDB keeps a quorum (2 of 3) through voluntary disruptions.
func EtcdPDB(c *v1alpha1.KafscaleCluster) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: EtcdServiceName(c), Namespace: c.Namespace, Labels: etcdLabels(c)},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: ptr.To(intstr.FromInt32(etcdMembers/2 + 1)),
			Selector:     &metav1.LabelSelector{MatchLabels: etcdSelector(c)},
		},
	}
}
