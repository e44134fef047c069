package controller

import (
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/kafscale/kafscale/operator/api/v1alpha1"
	"github.com/kafscale/kafscale/operator/config"
)

func TestSnapshotCronJob(t *testing.T) {
	cfg := &config.Operator{OperatorImage: "ghcr.io/kafscale/operator:0.1.0", SnapshotSchedule: "*/30 * * * *", SnapshotPrefix: "etcd-snapshots"}
	cases := []struct {
		name    string
		cluster *v1alpha1.KafscaleCluster
		secret  bool
	}{
		{"pod identity", newCluster(), false},
		{"credentials secret", newCluster(withCredentials("s3-creds"), func(c *v1alpha1.KafscaleCluster) {
			c.Spec.S3.Endpoint, c.Spec.S3.PathStyle = "http://minio:9000", true
		}), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cj := SnapshotCronJob(tc.cluster, cfg, []string{"http://e1:2379", "http://e2:2379"})
			if cj.Name != "prod-etcd-snapshot" || cj.Spec.Schedule != "*/30 * * * *" || cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
				t.Errorf("cronjob %s %+v", cj.Name, cj.Spec)
			}
			ctr := cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0]
			if ctr.Image != cfg.OperatorImage || len(ctr.Args) != 1 || ctr.Args[0] != "etcd-snapshot" {
				t.Errorf("container %s %v", ctr.Image, ctr.Args)
			}
			env := envMap(ctr.Env)
			want := map[string]string{
				"KAFSCALE_SNAPSHOT_ETCD_ENDPOINTS": "http://e1:2379,http://e2:2379", "KAFSCALE_SNAPSHOT_S3_BUCKET": "kafscale-etcd-kafscale-prod",
				"KAFSCALE_SNAPSHOT_S3_REGION": "eu-west-1", "KAFSCALE_SNAPSHOT_PREFIX": "etcd-snapshots/kafscale/prod/",
				"KAFSCALE_SNAPSHOT_S3_ENDPOINT": tc.cluster.Spec.S3.Endpoint,
			}
			for k, v := range want {
				if env[k].Value != v {
					t.Errorf("%s = %q, want %q", k, env[k].Value, v)
				}
			}
			for _, key := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "KAFSCALE_S3_ACCESS_KEY", "KAFSCALE_S3_SECRET_KEY"} {
				e, ok := env[key]
				if ok != tc.secret || (ok && (e.Value != "" || e.ValueFrom.SecretKeyRef.Name != "s3-creds" || e.ValueFrom.SecretKeyRef.Key != key || !*e.ValueFrom.SecretKeyRef.Optional)) {
					t.Errorf("%s = %+v (present %v, want %v)", key, e, ok, tc.secret)
				}
			}
			if links := cj.Spec.JobTemplate.Spec.Template.Spec.EnableServiceLinks; links == nil || *links {
				t.Errorf("service links on: the namespace's Services become KAFSCALE_* variables")
			}
			if cj.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyOnFailure {
				t.Error("restart policy")
			}
		})
	}
}

// The guide's snapshot bucket: a dedicated one per cluster unless one is named, valid as an
// S3 bucket name however long the cluster's names are; the endpoint override wins.
func TestSnapshotBucketAndEndpoint(t *testing.T) {
	c := newCluster(func(c *v1alpha1.KafscaleCluster) { c.Spec.S3.Endpoint = "http://segments:9000" })
	cfg := &config.Operator{}
	if b := SnapshotBucket(cfg, c); b != "kafscale-etcd-kafscale-prod" {
		t.Errorf("default bucket %q", b)
	}
	if e := SnapshotEndpoint(cfg, c); e != "http://segments:9000" {
		t.Errorf("default endpoint %q", e)
	}
	long := newCluster(func(c *v1alpha1.KafscaleCluster) {
		c.Namespace, c.Name = "a-rather-long-namespace-name", "a-cluster-with-an-even-longer-name-x"
	})
	if b := SnapshotBucket(cfg, long); len(b) > 63 || strings.HasSuffix(b, "-") || !strings.HasPrefix(b, "kafscale-etcd-a-rather-long-namespace-name-a-cluster") {
		t.Errorf("long names: bucket %q (%d characters)", b, len(b))
	}
	cfg = &config.Operator{SnapshotBucket: "etcd-backups", SnapshotS3Endpoint: "https://s3.backup.example"}
	if b, e := SnapshotBucket(cfg, c), SnapshotEndpoint(cfg, c); b != "etcd-backups" || e != "https://s3.backup.example" {
		t.Errorf("overrides: %q %q", b, e)
	}
}
