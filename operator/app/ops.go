package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kafscale/kafscale/operator/api/v1alpha1"
	"github.com/kafscale/kafscale/operator/config"
	"github.com/kafscale/kafscale/operator/controller"
	"github.com/kafscale/kafscale/operator/snapshot"
)

// SnapshotPath is the ops API endpoint that takes an etcd snapshot now (served on the
// metrics listener, next to /metrics).
const SnapshotPath = "/api/v1/etcd/snapshot"

// OpsAPI holds the etcd snapshot operations: the S3 write preflight and on-demand snapshots.
type OpsAPI struct {
	Config *config.Operator
	Client client.Client
	Etcd   *controller.EtcdPool
	Log    *slog.Logger
}

// SnapshotPrefix is where a cluster's snapshots go in its bucket.
func (o *OpsAPI) SnapshotPrefix(c *v1alpha1.KafscaleCluster) string {
	return controller.SnapshotPrefix(o.Config, c)
}

// s3Client builds a client for the cluster's primary bucket with the credentials of
// spec.s3.credentialsSecretRef (read from the Secret, kept in memory only), or the default
// AWS chain without one.
func (o *OpsAPI) s3Client(ctx context.Context, c *v1alpha1.KafscaleCluster) (*s3.Client, error) {
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(c.Spec.S3.Region)}
	if ref := c.Spec.S3.CredentialsSecretRef; ref != nil {
		var sec corev1.Secret
		if err := o.Client.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: ref.Name}, &sec); err != nil {
			return nil, fmt.Errorf("S3 credentials Secret %s: %w", ref.Name, err)
		}
		creds, err := controller.CredentialsFromSecret(&sec)
		if err != nil {
			return nil, err
		}
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(creds.AccessKey, creds.SecretKey, creds.SessionToken)))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("S3 configuration: %w", err)
	}
	return s3.NewFromConfig(awsCfg, func(so *s3.Options) {
		if e := c.Spec.S3.Endpoint; e != "" {
			so.BaseEndpoint = aws.String(e)
		}
		so.UsePathStyle = c.Spec.S3.PathStyle
	}), nil
}

// Preflight writes a probe object where the cluster's snapshots go (<prefix>.preflight,
// overwritten each time and never deleted, so the check leaves one small object and no
// delete permission is needed). On success it also initialises the last-success series
// from the newest snapshot in the bucket.
func (o *OpsAPI) Preflight(ctx context.Context, c *v1alpha1.KafscaleCluster) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	cli, err := o.s3Client(ctx, c)
	if err != nil {
		return err
	}
	bucket, key := c.Spec.S3.Bucket, o.SnapshotPrefix(c)+".preflight"
	body := "kafscale etcd snapshot preflight by " + o.Config.PodName + " at " + time.Now().UTC().Format(time.RFC3339) + "\n"
	if _, err := cli.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader(body)}); err != nil {
		return fmt.Errorf("write s3://%s/%s: %w", bucket, key, err)
	}
	newest, err := o.newestSnapshot(ctx, cli, c)
	if err != nil {
		return err
	}
	controller.RecordSnapshotSuccess(c.Name, newest)
	return nil
}

// newestSnapshot is the time of the newest checksum object (written after its snapshot), or
// the zero time.
func (o *OpsAPI) newestSnapshot(ctx context.Context, cli *s3.Client, c *v1alpha1.KafscaleCluster) (time.Time, error) {
	var newest time.Time
	p := s3.NewListObjectsV2Paginator(cli, &s3.ListObjectsV2Input{Bucket: &c.Spec.S3.Bucket, Prefix: aws.String(o.SnapshotPrefix(c))})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return time.Time{}, fmt.Errorf("list snapshots in s3://%s/%s: %w", c.Spec.S3.Bucket, o.SnapshotPrefix(c), err)
		}
		for _, obj := range page.Contents {
			if strings.HasSuffix(aws.ToString(obj.Key), ".sha256") && obj.LastModified != nil && obj.LastModified.After(newest) {
				newest = *obj.LastModified
			}
		}
	}
	return newest, nil
}

// SnapshotResult is the ops API's answer.
type SnapshotResult = snapshot.Result

// Snapshot takes an etcd snapshot of the cluster's etcd and uploads it with its checksum
// under the cluster's snapshot prefix.
func (o *OpsAPI) Snapshot(ctx context.Context, c *v1alpha1.KafscaleCluster) (*SnapshotResult, error) {
	endpoints, _ := controller.EtcdEndpoints(c, o.Config)
	etcd, err := o.Etcd.Client(endpoints)
	if err != nil {
		return nil, err
	}
	cli, err := o.s3Client(ctx, c)
	if err != nil {
		return nil, err
	}
	res, err := snapshot.Take(ctx, etcd, cli, c.Spec.S3.Bucket, o.SnapshotPrefix(c))
	if err != nil {
		return nil, err
	}
	res.Cluster = c.Name
	controller.RecordSnapshotSuccess(c.Name, res.Time)
	return res, nil
}

// ServeHTTP answers POST /api/v1/etcd/snapshot[?cluster=<name>]; the cluster may be left out
// when the namespace has exactly one.
func (o *OpsAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	if o.Client == nil {
		http.Error(w, "operator is starting", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	c, status, err := o.findCluster(ctx, r.URL.Query().Get("cluster"))
	if err != nil {
		http.Error(w, err.Error(), status)
		return
	}
	res, err := o.Snapshot(ctx, c)
	if err != nil {
		o.Log.Error("etcd snapshot through the ops API failed", "cluster", c.Name, "err", err)
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	o.Log.Info("etcd snapshot written", "cluster", c.Name, "object", res.Object, "bytes", res.Bytes)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(res)
}

func (o *OpsAPI) findCluster(ctx context.Context, name string) (*v1alpha1.KafscaleCluster, int, error) {
	var list v1alpha1.KafscaleClusterList
	if err := o.Client.List(ctx, &list, client.InNamespace(o.Config.Namespace)); err != nil {
		return nil, http.StatusServiceUnavailable, fmt.Errorf("list KafscaleClusters: %w", err)
	}
	var found []*v1alpha1.KafscaleCluster
	for i := range list.Items {
		if name == "" || list.Items[i].Name == name {
			found = append(found, &list.Items[i])
		}
	}
	switch {
	case len(found) == 1:
		return found[0], 0, nil
	case len(found) == 0 && name != "":
		return nil, http.StatusNotFound, fmt.Errorf("no KafscaleCluster %q in namespace %s", name, o.Config.Namespace)
	case len(found) == 0:
		return nil, http.StatusNotFound, errors.New("no KafscaleCluster in namespace " + o.Config.Namespace)
	default:
		return nil, http.StatusBadRequest, errors.New("several KafscaleClusters: add ?cluster=<name>")
	}
}
