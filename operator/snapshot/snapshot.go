// Package snapshot takes an etcd snapshot and uploads it to S3 with its checksum (the
// operator's ops API and the snapshot CronJob's Job, `operator etcd-snapshot`), and restores
// the newest one into an empty member (`operator etcd-restore`, the managed etcd's init
// container).
package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Result describes an uploaded snapshot.
type Result struct {
	Cluster  string    `json:"cluster,omitempty"`
	Bucket   string    `json:"bucket"`
	Object   string    `json:"object"`
	Checksum string    `json:"checksumObject"`
	SHA256   string    `json:"sha256"`
	Bytes    int       `json:"bytes"`
	Time     time.Time `json:"time"`
}

// Take streams a snapshot from etcd (Maintenance.Snapshot) and uploads it as
// <prefix>etcd-<UTC time>.db, then its hex SHA-256 as <object>.sha256. The checksum goes
// last: its presence means the snapshot is complete.
func Take(ctx context.Context, etcd *clientv3.Client, s3c *s3.Client, bucket, prefix string) (*Result, error) {
	rc, err := etcd.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("etcd snapshot: %w", err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("etcd snapshot: %w", err)
	}
	sum := sha256.Sum256(data)
	now := time.Now().UTC()
	res := &Result{
		Bucket: bucket, SHA256: hex.EncodeToString(sum[:]), Bytes: len(data), Time: now,
		Object: prefix + "etcd-" + now.Format("20060102T150405.000Z") + ".db",
	}
	res.Checksum = res.Object + ".sha256"
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: &res.Bucket, Key: &res.Object, Body: bytes.NewReader(data)}); err != nil {
		return nil, fmt.Errorf("upload s3://%s/%s: %w", res.Bucket, res.Object, err)
	}
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: &res.Bucket, Key: &res.Checksum, Body: strings.NewReader(res.SHA256)}); err != nil {
		return nil, fmt.Errorf("upload s3://%s/%s: %w", res.Bucket, res.Checksum, err)
	}
	return res, nil
}

// Job is the configuration of `operator etcd-snapshot`, the snapshot CronJob's command, read
// from the environment the operator gives the Job.
type Job struct {
	EtcdEndpoints []string // KAFSCALE_SNAPSHOT_ETCD_ENDPOINTS (required)
	Bucket        string   // KAFSCALE_SNAPSHOT_S3_BUCKET (required)
	Region        string   // KAFSCALE_SNAPSHOT_S3_REGION
	Endpoint      string   // KAFSCALE_SNAPSHOT_S3_ENDPOINT
	PathStyle     bool     // KAFSCALE_SNAPSHOT_S3_PATH_STYLE
	Prefix        string   // KAFSCALE_SNAPSHOT_PREFIX, ends with /
	Creds         Credentials
}

// Credentials are the snapshot bucket's static keys: KAFSCALE_S3_ACCESS_KEY,
// KAFSCALE_S3_SECRET_KEY and KAFSCALE_S3_SESSION_TOKEN (the operations guide's Secret keys,
// mapped in by the operator). Empty means the default AWS chain: AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY (the SDK's Secret keys), or the pod's identity.
type Credentials struct{ AccessKey, SecretKey, SessionToken string }

// parseCredentials reads the guide's key pair; half a pair is an error naming the other half.
func parseCredentials(get func(string) string) (Credentials, error) {
	c := Credentials{AccessKey: get("KAFSCALE_S3_ACCESS_KEY"), SecretKey: get("KAFSCALE_S3_SECRET_KEY"), SessionToken: get("KAFSCALE_S3_SESSION_TOKEN")}
	if (c.AccessKey == "") != (c.SecretKey == "") {
		return Credentials{}, fmt.Errorf("KAFSCALE_S3_ACCESS_KEY and KAFSCALE_S3_SECRET_KEY must be set together (the credentials Secret holds only one of them)")
	}
	return c, nil
}

// ParseJob reads the Job's environment through lookup.
func ParseJob(lookup func(string) (string, bool)) (*Job, error) {
	get := func(k string) string { v, _ := lookup(k); return strings.TrimSpace(v) }
	j := &Job{Bucket: get("KAFSCALE_SNAPSHOT_S3_BUCKET"), Region: get("KAFSCALE_SNAPSHOT_S3_REGION"), Endpoint: get("KAFSCALE_SNAPSHOT_S3_ENDPOINT"),
		PathStyle: get("KAFSCALE_SNAPSHOT_S3_PATH_STYLE") == "true", Prefix: get("KAFSCALE_SNAPSHOT_PREFIX")}
	for _, e := range strings.Split(get("KAFSCALE_SNAPSHOT_ETCD_ENDPOINTS"), ",") {
		if e = strings.TrimSpace(e); e != "" {
			j.EtcdEndpoints = append(j.EtcdEndpoints, e)
		}
	}
	if j.Region == "" {
		j.Region = "us-east-1"
	}
	if j.Prefix != "" && !strings.HasSuffix(j.Prefix, "/") {
		j.Prefix += "/"
	}
	var err error
	if j.Creds, err = parseCredentials(get); err != nil {
		return nil, fmt.Errorf("etcd-snapshot: %w", err)
	}
	var missing []string
	if len(j.EtcdEndpoints) == 0 {
		missing = append(missing, "KAFSCALE_SNAPSHOT_ETCD_ENDPOINTS")
	}
	if j.Bucket == "" {
		missing = append(missing, "KAFSCALE_SNAPSHOT_S3_BUCKET")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("etcd-snapshot: %s required", strings.Join(missing, " and "))
	}
	return j, nil
}

// Run takes one snapshot as the Job describes.
func (j *Job) Run(ctx context.Context) (*Result, error) {
	etcd, err := clientv3.New(clientv3.Config{Endpoints: j.EtcdEndpoints, DialTimeout: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	defer etcd.Close()
	s3c, err := newS3Client(ctx, j.Region, j.Endpoint, j.PathStyle, j.Creds)
	if err != nil {
		return nil, err
	}
	return Take(ctx, etcd, s3c, j.Bucket, j.Prefix)
}

// newS3Client is a client of the snapshot bucket with the static keys when given, else the
// default AWS credential chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or the pod's identity).
func newS3Client(ctx context.Context, region, endpoint string, pathStyle bool, creds Credentials) (*s3.Client, error) {
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(region)}
	if creds.AccessKey != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(creds.AccessKey, creds.SecretKey, creds.SessionToken)))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("S3 configuration: %w", err)
	}
	return s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = &endpoint
		}
		o.UsePathStyle = pathStyle
	}), nil
}
