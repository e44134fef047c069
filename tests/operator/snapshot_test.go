package operator_test

import (
	"os/exec"
	"strings"
	"time"

	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	batchv1 "k8s.io/api/batch/v1"
	"net/http"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kafscale/kafscale/operator/api/v1alpha1"
	"github.com/kafscale/kafscale/operator/app"
)

// TestSnapshotPreflightAndOpsAPI: denied S3 credentials make EtcdSnapshotAccess False and the
// access series 0; fixing the Secret brings both back; the ops API writes an etcd snapshot
// and its checksum, which verify.
func TestSnapshotPreflightAndOpsAPI(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()
	c := e.c
	sec := credentialsSecret("s3-creds", e.s3.AccessKey, "wrong-"+e.s3.SecretKey)
	create(t, c, sec)
	op := e.startOperator(t, e.operatorConfig(t, "op-a", "/test/"+randomKey()+"/leader"))
	create(t, c, e.cluster("snap", "s3-creds"))

	denied := clusterCondition(t, c, "snap", v1alpha1.ConditionEtcdSnapshotAccess, metav1.ConditionFalse)
	for _, cond := range denied.Status.Conditions {
		if cond.Type == v1alpha1.ConditionEtcdSnapshotAccess {
			t.Logf("denied: reason %s, message %q", cond.Reason, cond.Message)
		}
	}
	access := `kafscale_operator_etcd_snapshot_access_ok{cluster="snap"}`
	if v := metric(t, op.cfg.MetricsAddr, access); v != "0" {
		t.Errorf("%s = %q with denied credentials", access, v)
	}
	// The other conditions are still reconciled.
	clusterCondition(t, c, "snap", v1alpha1.ConditionEtcdAvailable, metav1.ConditionTrue)

	before := sec.DeepCopy()
	sec.Data["AWS_SECRET_ACCESS_KEY"] = []byte(e.s3.SecretKey)
	if err := c.Patch(ctx, sec, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
	clusterCondition(t, c, "snap", v1alpha1.ConditionEtcdSnapshotAccess, metav1.ConditionTrue)
	eventually(t, "access metric 1", func() error {
		if v := metric(t, op.cfg.MetricsAddr, access); v != "1" {
			return fmt.Errorf("%s = %q", access, v)
		}
		return nil
	})
	last := `kafscale_operator_etcd_snapshot_last_success_timestamp_seconds{cluster="snap"}`
	if v := metric(t, op.cfg.MetricsAddr, last); v != "0" {
		t.Errorf("%s = %q before any snapshot", last, v)
	}

	// Ops API.
	if resp, err := http.Get("http://" + op.cfg.MetricsAddr + app.SnapshotPath); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %v %v", resp, err)
	}
	resp, err := http.Post("http://"+op.cfg.MetricsAddr+app.SnapshotPath+"?cluster=snap", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST %s: %d %s", app.SnapshotPath, resp.StatusCode, body)
	}
	var res app.SnapshotResult
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	t.Logf("ops API: %s", body)
	verifySnapshot(t, e, res)
	if v, err := strconv.ParseFloat(metric(t, op.cfg.MetricsAddr, last), 64); err != nil || v <= 0 {
		t.Errorf("%s = %v after a snapshot (%v)", last, v, err)
	}
	if resp, err := http.Post("http://"+op.cfg.MetricsAddr+app.SnapshotPath+"?cluster=nope", "", nil); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown cluster: %v %v", resp, err)
	}
}

func download(t *testing.T, e *env, bucket, key string) []byte {
	t.Helper()
	out, err := e.s3.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSnapshotCronJob: the operator makes the cluster's snapshot CronJob and exports its last
// schedule time; the Job's command (the built binary's `etcd-snapshot`, run here with the
// CronJob's environment, Secret references resolved) uploads a snapshot that verifies. No
// kube-controller-manager runs, so the CronJob never fires by itself and the test sets its
// status.
func TestSnapshotCronJob(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()
	c := e.c
	sec := credentialsSecret("s3-creds", e.s3.AccessKey, e.s3.SecretKey)
	create(t, c, sec)
	cfg := e.operatorConfig(t, "op-a", "/test/"+randomKey()+"/leader")
	cfg.OperatorImage, cfg.SnapshotSchedule = "ghcr.io/kafscale/operator:test", "*/15 * * * *"
	op := e.startOperator(t, cfg)
	create(t, c, e.cluster("cron", "s3-creds"))

	var cj batchv1.CronJob
	eventually(t, "snapshot CronJob", func() error { return get(t, c, "cron-etcd-snapshot", &cj) })
	ctr := cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0]
	if cj.Spec.Schedule != "*/15 * * * *" || ctr.Image != cfg.OperatorImage || ctr.Args[0] != "etcd-snapshot" {
		t.Errorf("cronjob %+v", cj.Spec)
	}
	schedule := `kafscale_operator_etcd_snapshot_last_schedule_timestamp_seconds{cluster="cron"}`
	eventually(t, "last schedule 0", func() error {
		if v := metric(t, op.cfg.MetricsAddr, schedule); v != "0" {
			return fmt.Errorf("%s = %q", schedule, v)
		}
		return nil
	})
	before := cj.DeepCopy()
	at := metav1.NewTime(time.Unix(1_800_000_000, 0))
	cj.Status.LastScheduleTime = &at
	if err := c.Status().Patch(ctx, &cj, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "last schedule exported", func() error {
		if v := metric(t, op.cfg.MetricsAddr, schedule); v != "1.8e+09" {
			return fmt.Errorf("%s = %q", schedule, v)
		}
		return nil
	})

	// Run the Job's command as Kubernetes would, with the CronJob's environment.
	cmd := exec.Command(buildOperator(t), ctr.Args...)
	for _, v := range ctr.Env {
		value := v.Value
		if ref := v.ValueFrom; ref != nil && ref.SecretKeyRef != nil {
			value = string(sec.Data[ref.SecretKeyRef.Key])
		}
		cmd.Env = append(cmd.Env, v.Name+"="+value)
	}
	cmd.Env = append(cmd.Env, "HOME="+t.TempDir(), "AWS_EC2_METADATA_DISABLED=true")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("etcd-snapshot: %v (%s)", err, out)
	}
	var res app.SnapshotResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("etcd-snapshot output %q: %v", out, err)
	}
	t.Logf("etcd-snapshot job: %s", out)
	if !strings.HasPrefix(res.Object, "etcd-snapshots/kafscale/cron/etcd-") {
		t.Errorf("object %s is not under the cluster's prefix", res.Object)
	}
	verifySnapshot(t, e, res)
}

// verifySnapshot downloads a snapshot and its checksum object and compares them.
func verifySnapshot(t *testing.T, e *env, res app.SnapshotResult) {
	t.Helper()
	object, checksum := download(t, e, res.Bucket, res.Object), download(t, e, res.Bucket, res.Checksum)
	sum := sha256.Sum256(object)
	if hex.EncodeToString(sum[:]) != string(checksum) || res.Checksum != res.Object+".sha256" || len(object) != res.Bytes {
		t.Errorf("snapshot %s (%d bytes, sha256 %x) vs checksum %q", res.Object, len(object), sum, checksum)
	}
	// An etcd snapshot is a bbolt database file: several 4 KiB pages at least.
	if len(object) < 4096 {
		t.Errorf("snapshot of %d bytes is too small for an etcd database", len(object))
	}
}
