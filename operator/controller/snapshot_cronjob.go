package controller

import (
	"path"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kafscale/kafscale/operator/api/v1alpha1"
	"github.com/kafscale/kafscale/operator/config"
)

// SnapshotPrefix is where a cluster's etcd snapshots go in the snapshot bucket:
// <KAFSCALE_OPERATOR_ETCD_SNAPSHOT_PREFIX>/<namespace>/<cluster>/.
func SnapshotPrefix(cfg *config.Operator, c *v1alpha1.KafscaleCluster) string {
	return path.Join(cfg.SnapshotPrefix, c.Namespace, c.Name) + "/"
}

// SnapshotBucket is the bucket of a cluster's etcd snapshots: KAFSCALE_OPERATOR_ETCD_SNAPSHOT_BUCKET,
// or else a dedicated bucket kafscale-etcd-<namespace>-<cluster> (cut to S3's 63 characters),
// so snapshots are kept apart from the broker segments and their lifecycle rules.
func SnapshotBucket(cfg *config.Operator, c *v1alpha1.KafscaleCluster) string {
	if cfg.SnapshotBucket != "" {
		return cfg.SnapshotBucket
	}
	b := strings.ToLower("kafscale-etcd-" + c.Namespace + "-" + c.Name)
	if len(b) > 63 {
		b = b[:63]
	}
	return strings.TrimRight(b, "-.")
}

// SnapshotEndpoint is the S3 endpoint of the snapshot bucket:
// KAFSCALE_OPERATOR_ETCD_SNAPSHOT_S3_ENDPOINT, else the cluster's spec.s3.endpoint. Region,
// path style and credentials are the cluster's.
func SnapshotEndpoint(cfg *config.Operator, c *v1alpha1.KafscaleCluster) string {
	if cfg.SnapshotS3Endpoint != "" {
		return cfg.SnapshotS3Endpoint
	}
	return c.Spec.S3.Endpoint
}

// SnapshotCronJobName is the name of a cluster's etcd snapshot CronJob.
func SnapshotCronJobName(c *v1alpha1.KafscaleCluster) string { return c.Name + "-etcd-snapshot" }

// SnapshotCronJob builds the CronJob that runs `operator etcd-snapshot` (the operator image)
// on KAFSCALE_OPERATOR_ETCD_SNAPSHOT_SCHEDULE: one snapshot of the cluster's etcd to its
// snapshot bucket (SnapshotBucket), with its .sha256.
func SnapshotCronJob(c *v1alpha1.KafscaleCluster, cfg *config.Operator, etcdEndpoints []string) *batchv1.CronJob {
	env := append([]corev1.EnvVar{{Name: "KAFSCALE_SNAPSHOT_ETCD_ENDPOINTS", Value: strings.Join(etcdEndpoints, ",")}}, snapshotS3Env(c, cfg)...)
	labels := map[string]string{

		"app.kubernetes.io/name":       "kafscale-etcd-snapshot",
		"app.kubernetes.io/instance":   c.Name,
		"app.kubernetes.io/component":  "etcd-snapshot",
		"app.kubernetes.io/part-of":    "kafscale",
		"app.kubernetes.io/managed-by": "kafscale-operator",
	}
	pod := corev1.PodSpec{
		RestartPolicy:                corev1.RestartPolicyOnFailure,
		AutomountServiceAccountToken: ptr.To(false),
		EnableServiceLinks:           ptr.To(false),
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{{
			Name:            "etcd-snapshot",
			Image:           cfg.OperatorImage,
			Args:            []string{"etcd-snapshot"},
			Env:             env,
			SecurityContext: restrictedContainerSecurity(),
		}},
	}
	for _, s := range cfg.ImagePullSecrets {
		pod.ImagePullSecrets = append(pod.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
	}
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: SnapshotCronJobName(c), Namespace: c.Namespace, Labels: labels},
		Spec: batchv1.CronJobSpec{
			Schedule:                   cfg.SnapshotSchedule,
			ConcurrencyPolicy:          batchv1.ForbidConcurrent,
			StartingDeadlineSeconds:    ptr.To[int64](300),
			SuccessfulJobsHistoryLimit: ptr.To[int32](3),
			FailedJobsHistoryLimit:     ptr.To[int32](3),
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: batchv1.JobSpec{
					BackoffLimit:          ptr.To[int32](2),
					ActiveDeadlineSeconds: ptr.To[int64](600),
					Template:              corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: pod},
				},
			},
		},
	}
}

// snapshotS3Env says where a cluster's snapshots live, for the snapshot Job and the restore
// init container: bucket, region, endpoint, path style, prefix, and the credentials as
// secretKeyRefs to spec.s3.credentialsSecretRef (without one, the pod's own identity).
func snapshotS3Env(c *v1alpha1.KafscaleCluster, cfg *config.Operator) []corev1.EnvVar {
	env := []corev1.EnvVar{
		{Name: "KAFSCALE_SNAPSHOT_S3_BUCKET", Value: SnapshotBucket(cfg, c)},
		{Name: "KAFSCALE_SNAPSHOT_S3_REGION", Value: c.Spec.S3.Region},
		{Name: "KAFSCALE_SNAPSHOT_S3_ENDPOINT", Value: SnapshotEndpoint(cfg, c)},
		{Name: "KAFSCALE_SNAPSHOT_S3_PATH_STYLE", Value: strconv.FormatBool(c.Spec.S3.PathStyle)},
		{Name: "KAFSCALE_SNAPSHOT_PREFIX", Value: SnapshotPrefix(cfg, c)},
	}
	return append(env, s3CredentialEnv(c.Spec.S3.CredentialsSecretRef)...)
}
