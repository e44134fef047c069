package operator_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
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
	s3c := e.s3.Client()
	download := func(key string) []byte {
		out, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: &e.s3.Bucket, Key: &key})
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
	object, checksum := download(res.Object), download(res.Checksum)
	sum := sha256.Sum256(object)
	if hex.EncodeToString(sum[:]) != string(checksum) || res.Checksum != res.Object+".sha256" || len(object) != res.Bytes || len(object) == 0 {
		t.Errorf("snapshot %s (%d bytes, sha256 %x) vs checksum %q", res.Object, len(object), sum, checksum)
	}
	// An etcd snapshot is a bbolt database file: several 4 KiB pages at least.
	if len(object) < 4096 {
		t.Errorf("snapshot of %d bytes is too small for an etcd database", len(object))
	}
	if v, err := strconv.ParseFloat(metric(t, op.cfg.MetricsAddr, last), 64); err != nil || v <= 0 {
		t.Errorf("%s = %v after a snapshot (%v)", last, v, err)
	}
	if resp, err := http.Post("http://"+op.cfg.MetricsAddr+app.SnapshotPath+"?cluster=nope", "", nil); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown cluster: %v %v", resp, err)
	}
}
