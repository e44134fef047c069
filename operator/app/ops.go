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
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
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

// s3Client builds a client for the cluster's snapshot bucket (its endpoint is
// KAFSCALE_OPERATOR_ETCD_SNAPSHOT_S3_ENDPOINT or spec.s3.endpoint) with the credentials of
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
	endpoint := controller.SnapshotEndpoint(o.Config, c)
	return s3.NewFromConfig(awsCfg, func(so *s3.Options) {
		if endpoint != "" {
			so.BaseEndpoint = aws.String(endpoint)
		}
		so.UsePathStyle = c.Spec.S3.PathStyle
	}), nil
}

// Preflight prepares and checks the cluster's snapshot bucket, in this order: creates it when
// missing (KAFSCALE_OPERATOR_ETCD_SNAPSHOT_CREATE_BUCKET), turns on versioning and the public
// access block (KAFSCALE_OPERATOR_ETCD_SNAPSHOT_PROTECT_BUCKET), writes a probe object where
// the snapshots go (<prefix>.preflight, overwritten each time and never deleted, so no delete
// permission is needed; left out with KAFSCALE_OPERATOR_ETCD_SNAPSHOT_SKIP_PREFLIGHT), and
// initialises the last-success series from the newest snapshot there. It returns what it
// found, for the EtcdSnapshotAccess condition.
func (o *OpsAPI) Preflight(ctx context.Context, c *v1alpha1.KafscaleCluster) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	cli, err := o.s3Client(ctx, c)
	if err != nil {
		return "", err
	}
	bucket := controller.SnapshotBucket(o.Config, c)
	var notes []string
	if o.Config.SnapshotCreateBucket {
		created, err := ensureBucket(ctx, cli, bucket, c.Spec.S3.Region)
		if err != nil {
			return "", err
		}
		if created {
			o.Log.Info("created the etcd snapshot bucket", "cluster", c.Name, "bucket", bucket)
		}
	}
	if o.Config.SnapshotProtectBucket {
		note, err := protectBucket(ctx, cli, bucket)
		if err != nil {
			return "", err
		}
		notes = append(notes, note)
	}
	if o.Config.SnapshotSkipPreflight {
		notes = append(notes, "the probe write is skipped (KAFSCALE_OPERATOR_ETCD_SNAPSHOT_SKIP_PREFLIGHT)")
	} else {
		key := o.SnapshotPrefix(c) + ".preflight"
		body := "kafscale etcd snapshot preflight by " + o.Config.PodName + " at " + time.Now().UTC().Format(time.RFC3339) + "\n"
		if _, err := cli.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader(body)}); err != nil {
			return "", fmt.Errorf("write s3://%s/%s: %w%s", bucket, key, err, missingBucketHint(err, o.Config.SnapshotCreateBucket))
		}
		notes = append(notes, "the operator wrote a probe object where etcd snapshots go")
	}
	newest, err := o.newestSnapshot(ctx, cli, c)
	switch {
	case err != nil && o.Config.SnapshotSkipPreflight:
		// Told not to check the bucket: a failed listing only leaves the last-success series alone.
		notes = append(notes, "listing the snapshots failed: "+err.Error())
	case err != nil:
		return "", err
	default:
		controller.RecordSnapshotSuccess(c.Name, newest)
	}
	return "s3://" + bucket + "/" + o.SnapshotPrefix(c) + ": " + strings.Join(notes, "; "), nil
}

// missingBucketHint says what to do when the snapshot bucket does not exist.
func missingBucketHint(err error, creating bool) string {
	var apiErr smithy.APIError
	if creating || !errors.As(err, &apiErr) || apiErr.ErrorCode() != "NoSuchBucket" {
		return ""
	}
	return " (create the bucket, name an existing one in KAFSCALE_OPERATOR_ETCD_SNAPSHOT_BUCKET, or set KAFSCALE_OPERATOR_ETCD_SNAPSHOT_CREATE_BUCKET=1)"
}

// ensureBucket creates the bucket when HeadBucket says it does not exist. It reports whether
// it made it.
func ensureBucket(ctx context.Context, cli *s3.Client, bucket, region string) (bool, error) {
	_, err := cli.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &bucket})
	if err == nil {
		return false, nil
	}
	var notFound *s3types.NotFound
	if !errors.As(err, &notFound) {
		return false, fmt.Errorf("check snapshot bucket %s: %w", bucket, err)
	}
	in := &s3.CreateBucketInput{Bucket: &bucket}
	if region != "" && region != "us-east-1" {
		in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(region)}
	}
	if _, err := cli.CreateBucket(ctx, in); err != nil {
		var owned *s3types.BucketAlreadyOwnedByYou
		if errors.As(err, &owned) {
			return false, nil
		}
		return false, fmt.Errorf("create snapshot bucket %s: %w", bucket, err)
	}
	return true, nil
}

// protectBucket turns on versioning (a deleted or overwritten snapshot stays recoverable) and
// blocks public access, each only when not already so. Versioning that cannot be turned on
// is an error; an S3 server that does not implement the public access block (answering
// NotImplemented, as versitygw and MinIO do) is reported in the note, since such servers
// have no public access to block.
func protectBucket(ctx context.Context, cli *s3.Client, bucket string) (string, error) {
	v, err := cli.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: &bucket})
	if err != nil {
		return "", fmt.Errorf("read versioning of snapshot bucket %s: %w", bucket, err)
	}
	if v.Status != s3types.BucketVersioningStatusEnabled {
		if _, err := cli.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: &bucket,
			VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
			return "", fmt.Errorf("turn on versioning of snapshot bucket %s: %w", bucket, err)
		}
	}
	all := &s3types.PublicAccessBlockConfiguration{BlockPublicAcls: aws.Bool(true), IgnorePublicAcls: aws.Bool(true), BlockPublicPolicy: aws.Bool(true), RestrictPublicBuckets: aws.Bool(true)}
	if got, err := cli.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: &bucket}); err == nil && got.PublicAccessBlockConfiguration != nil {
		g := got.PublicAccessBlockConfiguration
		if aws.ToBool(g.BlockPublicAcls) && aws.ToBool(g.IgnorePublicAcls) && aws.ToBool(g.BlockPublicPolicy) && aws.ToBool(g.RestrictPublicBuckets) {
			return "versioning on, public access blocked", nil
		}
	}
	if _, err := cli.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{Bucket: &bucket, PublicAccessBlockConfiguration: all}); err != nil {
		var apiErr smithy.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode() == "NotImplemented" {
			return "versioning on; this S3 server does not implement the public access block (PutPublicAccessBlock: NotImplemented)", nil
		}
		return "", fmt.Errorf("block public access to snapshot bucket %s: %w", bucket, err)
	}
	return "versioning on, public access blocked", nil
}

// newestSnapshot is the time of the newest checksum object (written after its snapshot), or
// the zero time.
func (o *OpsAPI) newestSnapshot(ctx context.Context, cli *s3.Client, c *v1alpha1.KafscaleCluster) (time.Time, error) {
	var newest time.Time
	bucket := controller.SnapshotBucket(o.Config, c)
	p := s3.NewListObjectsV2Paginator(cli, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String(o.SnapshotPrefix(c))})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return time.Time{}, fmt.Errorf("list snapshots in s3://%s/%s: %w", bucket, o.SnapshotPrefix(c), err)
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
	res, err := snapshot.Take(ctx, etcd, cli, controller.SnapshotBucket(o.Config, c), o.SnapshotPrefix(c))
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
