package operator_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	brokerconfig "github.com/kafscale/kafscale/broker/config"
	"github.com/kafscale/kafscale/operator/api/v1alpha1"
	"github.com/kafscale/kafscale/operator/app"
)

// guideSecret holds S3 keys under the names the operations guide tells users to use.
func guideSecret(name, access, secret string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Data:       map[string][]byte{"KAFSCALE_S3_ACCESS_KEY": []byte(access), "KAFSCALE_S3_SECRET_KEY": []byte(secret)},
	}
}

// resolveEnv is a container's environment as the kubelet builds it: values as written,
// secretKeyRefs read from sec, an optional key the Secret lacks left out (a required one
// fails the test, as the kubelet would refuse to start the container).
func resolveEnv(t *testing.T, env []corev1.EnvVar, sec *corev1.Secret) []string {
	t.Helper()
	var out []string
	for _, v := range env {
		value := v.Value
		if ref := v.ValueFrom; ref != nil {
			switch {
			case ref.SecretKeyRef != nil:
				b, ok := sec.Data[ref.SecretKeyRef.Key]
				if !ok {
					if ref.SecretKeyRef.Optional == nil || !*ref.SecretKeyRef.Optional {
						t.Fatalf("env %s needs key %s, which Secret %s lacks: the pod would not start", v.Name, ref.SecretKeyRef.Key, sec.Name)
					}
					continue
				}
				value = string(b)
			case ref.FieldRef != nil:
				value = "field-" + ref.FieldRef.FieldPath
			default:
				continue
			}
		}
		out = append(out, v.Name+"="+value)
	}
	return out
}

// TestCredentialsSecretAsTheGuideSays: a Secret with the guide's KAFSCALE_S3_ACCESS_KEY and
// KAFSCALE_S3_SECRET_KEY works for the preflight, the snapshot Job (run with the CronJob's
// environment against the S3 server) and the brokers (their environment, as the kubelet
// builds it, read by the broker's own parser); a Secret with neither pair gets an
// S3Credentials condition naming the keys expected, and a fix clears it.
func TestCredentialsSecretAsTheGuideSays(t *testing.T) {
	e := startEnv(t)
	c := e.c
	good := guideSecret("guide-creds", e.s3.AccessKey, e.s3.SecretKey)
	create(t, c, good)
	bad := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "bad-creds", Namespace: namespace},
		Data: map[string][]byte{"accessKey": []byte(e.s3.AccessKey), "secretKey": []byte(e.s3.SecretKey)}}
	create(t, c, bad)
	cfg := e.operatorConfig(t, "op-a", "/test/"+randomKey()+"/leader")
	cfg.OperatorImage, cfg.SnapshotSchedule = "ghcr.io/kafscale/operator:test", "0 * * * *"
	e.startOperator(t, cfg)
	create(t, c, e.cluster("guide", "guide-creds"))
	create(t, c, e.cluster("nokeys", "bad-creds"))

	clusterCondition(t, c, "guide", v1alpha1.ConditionS3Credentials, metav1.ConditionTrue)
	clusterCondition(t, c, "guide", v1alpha1.ConditionEtcdSnapshotAccess, metav1.ConditionTrue)

	kc := clusterCondition(t, c, "nokeys", v1alpha1.ConditionS3Credentials, metav1.ConditionFalse)
	cond := apimeta.FindStatusCondition(kc.Status.Conditions, v1alpha1.ConditionS3Credentials)
	t.Logf("no keys: %s: %s", cond.Reason, cond.Message)
	for _, key := range []string{"bad-creds", "KAFSCALE_S3_ACCESS_KEY", "KAFSCALE_S3_SECRET_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		if !strings.Contains(cond.Message, key) {
			t.Errorf("S3Credentials message %q does not name %s", cond.Message, key)
		}
	}
	if cond.Reason != "SecretKeysMissing" {
		t.Errorf("reason %s, want SecretKeysMissing", cond.Reason)
	}
	clusterCondition(t, c, "nokeys", v1alpha1.ConditionReady, metav1.ConditionFalse)

	// The snapshot Job of the guide's Secret.
	var cj batchv1.CronJob
	eventually(t, "snapshot CronJob", func() error { return get(t, c, "guide-etcd-snapshot", &cj) })
	ctr := cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0]
	cmd := exec.Command(buildOperator(t), ctr.Args...)
	cmd.Env = append(resolveEnv(t, ctr.Env, good), "HOME="+t.TempDir(), "AWS_EC2_METADATA_DISABLED=true")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("etcd-snapshot with the guide's Secret: %v (%s)", err, out)
	}
	var res app.SnapshotResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("etcd-snapshot output %q: %v", out, err)
	}
	verifySnapshot(t, e, res)

	// The brokers: the Deployment's environment, read by the broker's parser, holds the keys.
	var d appsv1.Deployment
	eventually(t, "broker Deployment", func() error { return get(t, c, "guide-broker", &d) })
	benv := map[string]string{}
	for _, kv := range resolveEnv(t, d.Spec.Template.Spec.Containers[0].Env, good) {
		k, v, _ := strings.Cut(kv, "=")
		benv[k] = v
	}
	bc, err := brokerconfig.Parse(func(k string) (string, bool) { v, ok := benv[k]; return v, ok })
	if err != nil {
		t.Fatalf("broker config from the Deployment's environment: %v", err)
	}
	if bc.S3.AccessKey != e.s3.AccessKey || bc.S3.SecretKey != e.s3.SecretKey {
		t.Errorf("broker S3 keys %q/%q, want the Secret's", bc.S3.AccessKey, bc.S3.SecretKey)
	}

	// Fixing the bad Secret (the guide's keys added) clears the condition.
	bad.Data["KAFSCALE_S3_ACCESS_KEY"], bad.Data["KAFSCALE_S3_SECRET_KEY"] = []byte(e.s3.AccessKey), []byte(e.s3.SecretKey)
	if err := c.Update(t.Context(), bad); err != nil {
		t.Fatal(err)
	}
	clusterCondition(t, c, "nokeys", v1alpha1.ConditionS3Credentials, metav1.ConditionTrue)
}
