package operator_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kafscale/kafscale/operator/api/v1alpha1"
	"github.com/kafscale/kafscale/operator/app"
	"github.com/kafscale/kafscale/tests/testenv"
)

// TestSnapshotSettings walks the guide's snapshot settings against the S3 server:
//   - no KAFSCALE_OPERATOR_ETCD_SNAPSHOT_BUCKET: the dedicated bucket
//     kafscale-etcd-<namespace>-<cluster>, missing at first, is created (_CREATE_BUCKET=1)
//     and versioned (_PROTECT_BUCKET=1; versitygw does not implement the public access
//     block, which the condition reports), and snapshots go there;
//   - _STALE_AFTER_SEC is exported and decides kafscale_operator_etcd_snapshot_stale, the
//     series the chart's stale alert reads: 0 under an hour's threshold, 1 under a second's;
//   - _SKIP_PREFLIGHT=1: no probe object, EtcdSnapshotAccess Unknown (PreflightSkipped), no
//     access series; and without _CREATE_BUCKET no bucket is made.
func TestSnapshotSettings(t *testing.T) {
	e := startEnv(t, testenv.WithS3Versioning())
	ctx := context.Background()
	c := e.c
	create(t, c, guideSecret("s3-creds", e.s3.AccessKey, e.s3.SecretKey))
	s3c := e.s3.Client()
	const dedicated = "kafscale-etcd-kafscale-dedicated"
	if bucketExists(t, s3c, dedicated) {
		t.Fatalf("bucket %s exists before the operator ran", dedicated)
	}

	cfg := e.operatorConfig(t, "op-a", "/test/"+randomKey()+"/leader")
	cfg.SnapshotBucket, cfg.SnapshotCreateBucket, cfg.SnapshotProtectBucket, cfg.SnapshotStaleAfter = "", true, true, time.Hour
	op := e.startOperator(t, cfg)
	create(t, c, e.cluster("dedicated", "s3-creds"))
	kc := clusterCondition(t, c, "dedicated", v1alpha1.ConditionEtcdSnapshotAccess, metav1.ConditionTrue)
	msg := apimeta.FindStatusCondition(kc.Status.Conditions, v1alpha1.ConditionEtcdSnapshotAccess).Message
	t.Logf("EtcdSnapshotAccess: %s", msg)
	if !bucketExists(t, s3c, dedicated) {
		t.Fatalf("bucket %s not created", dedicated)
	}
	v, err := s3c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(dedicated)})
	if err != nil || v.Status != s3types.BucketVersioningStatusEnabled {
		t.Errorf("versioning of %s: %+v %v", dedicated, v, err)
	}
	if !strings.Contains(msg, "s3://"+dedicated+"/etcd-snapshots/kafscale/dedicated/") || !strings.Contains(msg, "public access block (PutPublicAccessBlock: NotImplemented)") {
		t.Errorf("condition message %q does not say where snapshots go and that the public access block is unsupported", msg)
	}
	if !objectExists(t, s3c, dedicated, "etcd-snapshots/kafscale/dedicated/.preflight") {
		t.Error("no preflight probe in the dedicated bucket")
	}
	res := postSnapshot(t, op.cfg.MetricsAddr, "dedicated")
	if res.Bucket != dedicated {
		t.Errorf("snapshot went to bucket %s, want %s", res.Bucket, dedicated)
	}
	verifySnapshot(t, e, res)

	stale, after := `kafscale_operator_etcd_snapshot_stale{cluster="dedicated"}`, "kafscale_operator_etcd_snapshot_stale_after_seconds"
	if got := metric(t, op.cfg.MetricsAddr, after); got != "3600" {
		t.Errorf("%s = %q, want 3600", after, got)
	}
	if got := metric(t, op.cfg.MetricsAddr, stale); got != "0" {
		t.Errorf("%s = %q under an hour's threshold, just after a snapshot", stale, got)
	}
	op.stop(t)

	cfg = e.operatorConfig(t, "op-b", "/test/"+randomKey()+"/leader")
	cfg.SnapshotBucket, cfg.SnapshotSkipPreflight, cfg.SnapshotStaleAfter = "", true, time.Second
	op = e.startOperator(t, cfg)
	eventually(t, "stale under a one-second threshold", func() error {
		if got := metricNoFail(op.cfg.MetricsAddr, after); got != "1" {
			return fmt.Errorf("%s = %q", after, got)
		}
		if got := metricNoFail(op.cfg.MetricsAddr, stale); got != "1" {
			return fmt.Errorf("%s = %q", stale, got)
		}
		return nil
	})

	create(t, c, e.cluster("skipped", "s3-creds"))
	kc = clusterCondition(t, c, "skipped", v1alpha1.ConditionEtcdSnapshotAccess, metav1.ConditionUnknown)
	cond := apimeta.FindStatusCondition(kc.Status.Conditions, v1alpha1.ConditionEtcdSnapshotAccess)
	t.Logf("skipped: %s: %s", cond.Reason, cond.Message)
	if cond.Reason != "PreflightSkipped" {
		t.Errorf("reason %s, want PreflightSkipped", cond.Reason)
	}
	if bucketExists(t, s3c, "kafscale-etcd-kafscale-skipped") {
		t.Error("a bucket was created without KAFSCALE_OPERATOR_ETCD_SNAPSHOT_CREATE_BUCKET")
	}
	if got := metric(t, op.cfg.MetricsAddr, `kafscale_operator_etcd_snapshot_access_ok{cluster="skipped"}`); got != "" {
		t.Errorf("access series %q exported though the preflight is skipped", got)
	}
	// The first cluster's bucket gets no new probe either: its probe keeps the first operator's body.
	body := objectBody(t, s3c, dedicated, "etcd-snapshots/kafscale/dedicated/.preflight")
	clusterCondition(t, c, "dedicated", v1alpha1.ConditionEtcdSnapshotAccess, metav1.ConditionUnknown)
	if !strings.Contains(body, "by op-a") {
		t.Errorf("probe rewritten with the preflight skipped: %q", body)
	}
}

func postSnapshot(t *testing.T, addr, cluster string) app.SnapshotResult {
	t.Helper()
	resp, err := http.Post("http://"+addr+app.SnapshotPath+"?cluster="+cluster, "", nil)
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
	return res
}

func bucketExists(t *testing.T, cli *s3.Client, bucket string) bool {
	t.Helper()
	_, err := cli.HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: &bucket})
	var nf *s3types.NotFound
	if errors.As(err, &nf) {
		return false
	}
	if err != nil {
		t.Fatalf("head bucket %s: %v", bucket, err)
	}
	return true
}

func objectExists(t *testing.T, cli *s3.Client, bucket, key string) bool {
	t.Helper()
	_, err := cli.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	var nf *s3types.NotFound
	if errors.As(err, &nf) {
		return false
	}
	if err != nil {
		t.Fatalf("head s3://%s/%s: %v", bucket, key, err)
	}
	return true
}

func objectBody(t *testing.T, cli *s3.Client, bucket, key string) string {
	t.Helper()
	out, err := cli.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("get s3://%s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, _ := io.ReadAll(out.Body)
	return string(b)
}
