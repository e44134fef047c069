package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3 is a real S3-compatible server (versitygw, posix backend) on loopback with one fresh
// bucket.
type S3 struct {
	t         testing.TB
	proc      *process
	Endpoint  string // http://127.0.0.1:<port>
	Region    string
	AccessKey string
	SecretKey string
	Bucket    string
	// DataDir is the posix root: one directory per bucket, one file per object.
	DataDir string
}

// S3Option changes how StartS3 runs the server.
type S3Option func(*s3Options)

type s3Options struct{ versioning bool }

// WithS3Versioning lets buckets turn on versioning (versitygw keeps old versions in a
// directory of its own; without one it refuses PutBucketVersioning).
func WithS3Versioning() S3Option { return func(o *s3Options) { o.versioning = true } }

// StartS3 starts versitygw with root credentials unique to this test, and creates a bucket.
// It is stopped when the test ends.
func StartS3(t testing.TB, opts ...S3Option) *S3 {
	t.Helper()
	var o s3Options
	for _, opt := range opts {
		opt(&o)
	}
	bin := Binary(t, "versitygw")
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	sidecar := filepath.Join(dir, "meta")
	for _, d := range []string{dataDir, sidecar} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	port := FreePort(t)
	s := &S3{
		t:         t,
		Endpoint:  fmt.Sprintf("http://127.0.0.1:%d", port),
		Region:    "us-east-1",
		AccessKey: "AK" + randomHex(9),
		SecretKey: "SK" + randomHex(18),
		Bucket:    "kafscale-" + randomHex(4),
		DataDir:   dataDir,
	}
	s.proc = &process{
		name: "versitygw",
		path: bin,
		args: []string{
			"--port", fmt.Sprintf("127.0.0.1:%d", port),
			"--region", s.Region,
			"--quiet",
			// The sidecar keeps object metadata in files, so the data directory needs no
			// extended-attribute support (tmpfs, overlay).
			"posix", "--sidecar", sidecar,
		},
		env:     []string{"ROOT_ACCESS_KEY_ID=" + s.AccessKey, "ROOT_SECRET_ACCESS_KEY=" + s.SecretKey},
		logPath: filepath.Join(dir, "versitygw.log"),
	}
	if o.versioning {
		versions := filepath.Join(dir, "versions")
		if err := os.MkdirAll(versions, 0o755); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		s.proc.args = append(s.proc.args, "--versioning-dir", versions)
	}
	s.proc.args = append(s.proc.args, dataDir)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("versitygw log tail:\n%s", s.proc.logTail())
		}
		s.proc.stop(5 * time.Second)
	})
	s.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.Bucket)}); err != nil {
		t.Fatalf("testenv: create bucket %s: %v", s.Bucket, err)
	}
	return s
}

// Start (re)starts the server on the same port and data and waits until it answers.
func (s *S3) Start() {
	s.t.Helper()
	if err := s.proc.start(); err != nil {
		s.t.Fatalf("testenv: %v", err)
	}
	cli := s.Client()
	err := s.proc.waitFor(30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := cli.ListBuckets(ctx, &s3.ListBucketsInput{})
		return err
	})
	if err != nil {
		s.t.Fatalf("testenv: %v", err)
	}
}

// Stop stops the server, keeping its data. Tests use it to simulate an S3 outage.
func (s *S3) Stop() { s.proc.stop(5 * time.Second) }

// Client returns an aws-sdk-go-v2 client configured the way KafScale configures its own:
// static credentials, custom endpoint, path-style addressing.
func (s *S3) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
