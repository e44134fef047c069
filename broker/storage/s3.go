// Package storage is KafScale's S3 access: immutable objects under a namespace in the
// primary bucket, reads that try a read-replica bucket first, a health tracker that gates
// produce, and a byte-bounded read cache.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/kafscale/kafscale/broker/optcheck"
	"github.com/kafscale/kafscale/internal/bytebuf"
)

// Options configure the S3 store; New checks them (Validate) and fills nothing in. The
// broker maps its configuration (broker/config) onto them (broker/app.StorageOptions).
type Options struct {
	// Bucket is the primary bucket; every write goes here (KAFSCALE_S3_BUCKET).
	Bucket string
	// Region of the primary bucket (KAFSCALE_S3_REGION).
	Region string
	// Endpoint overrides the S3 endpoint, e.g. http://minio:9000 (KAFSCALE_S3_ENDPOINT).
	Endpoint string
	// PathStyle addresses buckets as <endpoint>/<bucket> (KAFSCALE_S3_PATH_STYLE).
	PathStyle bool
	// AccessKey, SecretKey and SessionToken are static credentials; with AccessKey empty the
	// default AWS chain is used (env, web identity, instance role) (KAFSCALE_S3_ACCESS_KEY,
	// KAFSCALE_S3_SECRET_KEY, KAFSCALE_S3_SESSION_TOKEN).
	AccessKey, SecretKey, SessionToken string
	// KMSKeyID, when set, makes every PUT use SSE-KMS with this key (KAFSCALE_S3_KMS_KEY_ID).
	KMSKeyID string
	// Namespace prefixes every object key (KAFSCALE_S3_NAMESPACE).
	Namespace string
	// ReadBucket, ReadRegion and ReadEndpoint name a read replica tried first for GETs
	// (KAFSCALE_S3_READ_BUCKET, KAFSCALE_S3_READ_REGION, KAFSCALE_S3_READ_ENDPOINT); region
	// and endpoint default to the primary's.
	ReadBucket, ReadRegion, ReadEndpoint string
	// RequestTimeout bounds each S3 call (KAFSCALE_S3_REQUEST_TIMEOUT_MS).
	RequestTimeout time.Duration
	// Health holds the health thresholds.
	Health HealthOptions
	// HTTPClient replaces the SDK's HTTP client (tests count requests with it).
	HTTPClient aws.HTTPClient
	// ObserveRead, when set, is given the duration of every GET, replica or primary, body
	// included, that the caller did not give up on (kafscale_s3_read_latency_ms).
	ObserveRead func(time.Duration)
}

// ErrNotFound is returned for a missing object.
var ErrNotFound = errors.New("object not found")

// Stats are counters for metrics.
type Stats struct {
	Puts, PutBytes, PutErrors     int64
	Gets, GetBytes, GetErrors     int64
	ReplicaGets, ReplicaFallbacks int64
	// ReplicaMissRatio is the fraction of replica GETs in the health window that missed or
	// failed and fell back to the primary (0 without replica GETs in it).
	ReplicaMissRatio float64
	// MeanLatency is the mean latency of S3 calls in the health window.
	MeanLatency                     time.Duration
	Deletes, Lists, Probes          int64
	LastPutLatency, LastGetLatency  time.Duration
	HealthState                     HealthState
	HealthStateChanges, ProbeErrors int64
}

// Store is the S3 object store of one namespace.
type Store struct {
	opts    Options
	primary *s3.Client
	replica *s3.Client // nil without a read replica
	health  *Health

	puts, putBytes, putErrors     atomic.Int64
	gets, getBytes, getErrors     atomic.Int64
	replicaGets, replicaFallbacks atomic.Int64
	replicaWindow                 *ratioWindow // replica misses over the health window
	deletes, lists, probes        atomic.Int64
	probeErrors                   atomic.Int64
	lastPut, lastGet              atomic.Int64
	lastState                     atomic.Int32
	stateChanges                  atomic.Int64

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// Validate reports the options that cannot work, all of them.
func (o Options) Validate() error {
	p := optcheck.New("storage")
	if o.Bucket == "" {
		p.Failf("no S3 bucket configured (set KAFSCALE_S3_BUCKET)")
	}
	if o.Region == "" {
		p.Failf("no S3 region")
	}
	if strings.Trim(o.Namespace, "/") == "" {
		p.Failf("no namespace (the prefix of every object key)")
	}
	optcheck.Positive(p, "RequestTimeout", o.RequestTimeout)
	return errors.Join(p.Err(), o.Health.Validate())
}

// New builds the S3 clients and starts the background health probe. It does not contact
// S3; call Probe for that.
func New(ctx context.Context, opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.Namespace = strings.Trim(opts.Namespace, "/")
	// A read replica without its own region or endpoint is reached like the primary.
	if opts.ReadRegion == "" {
		opts.ReadRegion = opts.Region
	}
	if opts.ReadEndpoint == "" {
		opts.ReadEndpoint = opts.Endpoint
	}
	health, err := NewHealth(opts.Health, nil)
	if err != nil {
		return nil, err
	}
	var creds aws.CredentialsProvider
	if opts.AccessKey != "" {
		creds = credentials.NewStaticCredentialsProvider(opts.AccessKey, opts.SecretKey, opts.SessionToken)
	} else {
		cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(opts.Region))
		if err != nil {
			return nil, fmt.Errorf("storage: load the default AWS credential chain: %w", err)
		}
		creds = cfg.Credentials
	}
	client := func(region, endpoint string) *s3.Client {
		o := s3.Options{
			Region:       region,
			Credentials:  creds,
			UsePathStyle: opts.PathStyle,
			// S3-compatible servers differ in checksum support; only send and check
			// checksums where the API requires them.
			RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
			ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		}
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		if opts.HTTPClient != nil {
			o.HTTPClient = opts.HTTPClient
		}
		return s3.New(o)
	}
	s := &Store{
		opts:    opts,
		primary: client(opts.Region, opts.Endpoint),
		health:  health,
		stop:    make(chan struct{}),
		// The replica's miss ratio is judged over the same window as S3's health.
		replicaWindow: newRatioWindow(opts.Health.Window, nil),
		done:          make(chan struct{}),
	}
	if opts.ReadBucket != "" {
		s.replica = client(opts.ReadRegion, opts.ReadEndpoint)
	}
	go s.probeLoop()
	return s, nil
}

// Close stops the background probe.
func (s *Store) Close() {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
}

// Namespace is the key prefix of every object, without a trailing slash.
func (s *Store) Namespace() string { return s.opts.Namespace }

// Key returns the full object key of a name inside the namespace.
func (s *Store) Key(name string) string { return s.opts.Namespace + "/" + name }

// Health is the current S3 health.
func (s *Store) Health() HealthState {
	st := s.health.State()
	if prev := HealthState(s.lastState.Swap(int32(st))); prev != st {
		s.stateChanges.Add(1)
	}
	return st
}

// HealthTracker exposes the tracker (tests, metrics).
func (s *Store) HealthTracker() *Health { return s.health }

// observe records a call in the health tracker; caller is the caller's context (not the one
// carrying RequestTimeout), because a caller giving up says nothing about S3.
func (s *Store) observe(caller context.Context, start time.Time, err error) time.Duration {
	d := time.Since(start)
	if caller.Err() != nil {
		return d
	}
	failed := err != nil && !errors.Is(err, ErrNotFound)
	s.health.Observe(d, failed)
	return d
}

// Put writes an object (name is relative to the namespace). Objects are immutable: a name
// is written once.
func (s *Store) Put(caller context.Context, name string, body []byte) error {
	return s.PutParts(caller, name, [][]byte{body})
}

// PutParts writes one object whose body is parts back to back, without joining them into
// one buffer (a flush's partition buffers and its footer).
func (s *Store) PutParts(caller context.Context, name string, parts [][]byte) error {
	ctx, cancel := context.WithTimeout(caller, s.opts.RequestTimeout)
	defer cancel()
	body := newPartsReader(parts)
	size := body.size
	in := &s3.PutObjectInput{
		Bucket:        aws.String(s.opts.Bucket),
		Key:           aws.String(s.Key(name)),
		Body:          body,
		ContentLength: aws.Int64(size),
		ContentType:   aws.String("application/octet-stream"),
	}
	if s.opts.KMSKeyID != "" {
		in.ServerSideEncryption = types.ServerSideEncryptionAwsKms
		in.SSEKMSKeyId = aws.String(s.opts.KMSKeyID)
	}
	start := time.Now()
	_, err := s.primary.PutObject(ctx, in)
	s.lastPut.Store(int64(s.observe(caller, start, err)))
	s.puts.Add(1)
	if err != nil {
		s.putErrors.Add(1)
		return fmt.Errorf("s3 put %s/%s: %w", s.opts.Bucket, s.Key(name), err)
	}
	s.putBytes.Add(size)
	return nil
}

// Get reads length bytes of an object from offset (length < 0: to the end). The read
// replica, when configured, is tried first; a miss or an error there falls back to the
// primary bucket. The bytes land in one buffer of exactly the object's or range's size.
func (s *Store) Get(caller context.Context, name string, offset, length int64) ([]byte, error) {
	if length == 0 {
		return []byte{}, nil
	}
	if length > 0 {
		buf := bytebuf.Make(int(length))[:length] // returned only when the GET filled it
		if err := s.GetParts(caller, name, []Part{{Pos: offset, Buf: buf}}); err != nil {
			return nil, err
		}
		return buf, nil
	}
	var out []byte
	err := s.read(caller, name, "bytes="+strconv.FormatInt(offset, 10)+"-", func(body io.Reader, size int64) error {
		if size < 0 {
			b, err := io.ReadAll(body)
			out = b
			return err
		}
		out = bytebuf.Make(int(size))[:size]
		_, err := io.ReadFull(body, out)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Part is a byte range of an object: len(Buf) bytes from Pos, read into Buf.
type Part struct {
	Pos int64
	Buf []byte
}

// GetParts fills parts, sorted by Pos and not overlapping, with ONE ranged GET of the span
// from the first part's start to the last one's end; the bytes between parts are read and
// dropped. The body is read straight into the parts' buffers, so a caller that sizes them
// exactly holds no more memory than the data. Replica first, as Get.
func (s *Store) GetParts(caller context.Context, name string, parts []Part) error {
	if len(parts) == 0 {
		return nil
	}
	first, last := parts[0], parts[len(parts)-1]
	end := last.Pos + int64(len(last.Buf))
	if end <= first.Pos {
		return nil
	}
	r := "bytes=" + strconv.FormatInt(first.Pos, 10) + "-" + strconv.FormatInt(end-1, 10)
	return s.read(caller, name, r, func(body io.Reader, size int64) error {
		if size >= 0 && size != end-first.Pos {
			return fmt.Errorf("asked for %d bytes at %d, the answer has %d", end-first.Pos, first.Pos, size)
		}
		at := first.Pos
		for _, p := range parts {
			if p.Pos < at {
				return fmt.Errorf("parts overlap at %d", p.Pos)
			}
			if gap := p.Pos - at; gap > 0 {
				if _, err := io.CopyN(io.Discard, body, gap); err != nil {
					return err
				}
			}
			if _, err := io.ReadFull(body, p.Buf); err != nil {
				return fmt.Errorf("asked for %d bytes at %d: %w", len(p.Buf), p.Pos, err)
			}
			at = p.Pos + int64(len(p.Buf))
		}
		return nil
	})
}

// read runs one GET with the Range header rng, replica first, and hands the body and its
// length (-1: unknown) to consume.
func (s *Store) read(caller context.Context, name, rng string, consume func(body io.Reader, size int64) error) error {
	ctx, cancel := context.WithTimeout(caller, s.opts.RequestTimeout)
	defer cancel()
	if s.replica != nil {
		s.replicaGets.Add(1)
		err := s.get(ctx, s.replica, s.opts.ReadBucket, name, rng, consume)
		if err == nil {
			s.replicaWindow.add(false)
			return nil
		}
		if caller.Err() != nil {
			return err
		}
		s.replicaWindow.add(true)
		s.replicaFallbacks.Add(1)
	}
	start := time.Now()
	err := s.get(ctx, s.primary, s.opts.Bucket, name, rng, consume)
	s.lastGet.Store(int64(s.observe(caller, start, err)))
	if err != nil && !errors.Is(err, ErrNotFound) {
		s.getErrors.Add(1)
	}
	return err
}

func (s *Store) get(ctx context.Context, c *s3.Client, bucket, name, rng string, consume func(body io.Reader, size int64) error) error {
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(s.Key(name))}
	if rng != "bytes=0-" {
		in.Range = aws.String(rng)
	}
	s.gets.Add(1)
	if s.opts.ObserveRead != nil {
		start := time.Now()
		defer func() {
			if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
				s.opts.ObserveRead(time.Since(start))
			}
		}()
	}
	out, err := c.GetObject(ctx, in)
	if err != nil {
		if isNotFound(err) {
			return fmt.Errorf("s3 get %s/%s: %w", bucket, s.Key(name), ErrNotFound)
		}
		return fmt.Errorf("s3 get %s/%s: %w", bucket, s.Key(name), err)
	}
	defer out.Body.Close()
	size := int64(-1)
	if out.ContentLength != nil {
		size = *out.ContentLength
	}
	cr := &countingReader{r: out.Body}
	if err := consume(cr, size); err != nil {
		return fmt.Errorf("s3 get %s/%s (%s): read body: %w", bucket, s.Key(name), rng, err)
	}
	s.getBytes.Add(cr.n)
	return nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func isNotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "NoSuchKey", "NotFound", "NoSuchBucket":
			return true
		}
	}
	return false
}

// Delete removes an object from the primary bucket.
func (s *Store) Delete(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	s.deletes.Add(1)
	_, err := s.primary.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.opts.Bucket), Key: aws.String(s.Key(name))})
	if err != nil {
		return fmt.Errorf("s3 delete %s/%s: %w", s.opts.Bucket, s.Key(name), err)
	}
	return nil
}

// Object is one listed object.
type Object struct {
	// Name is relative to the namespace.
	Name         string
	Size         int64
	LastModified time.Time
}

// List lists the objects of the primary bucket whose names start with prefix.
func (s *Store) List(ctx context.Context, prefix string) ([]Object, error) {
	var out []Object
	p := s3.NewListObjectsV2Paginator(s.primary, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.opts.Bucket),
		Prefix: aws.String(s.Key(prefix)),
	})
	for p.HasMorePages() {
		s.lists.Add(1)
		cctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
		page, err := p.NextPage(cctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("s3 list %s/%s: %w", s.opts.Bucket, s.Key(prefix), err)
		}
		for _, o := range page.Contents {
			o := Object{Name: strings.TrimPrefix(aws.ToString(o.Key), s.opts.Namespace+"/"), Size: aws.ToInt64(o.Size)}
			out = append(out, o)
		}
	}
	return out, nil
}

// Probe writes and deletes a small object: the broker's startup check that S3 accepts
// writes with the configured credentials.
func (s *Store) Probe(ctx context.Context) error {
	name := "probe/" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := s.Put(ctx, name, []byte("kafscale probe\n")); err != nil {
		return err
	}
	return s.Delete(ctx, name)
}

// probeLoop tests S3 with a cheap call while it is not healthy, so the state recovers (or
// is confirmed) even when the health gate stops all produce traffic.
func (s *Store) probeLoop() {
	defer close(s.done)
	t := time.NewTicker(s.opts.Health.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if s.Health() == Healthy {
			continue
		}
		s.probes.Add(1)
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.RequestTimeout)
		start := time.Now()
		_, err := s.primary.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.opts.Bucket)})
		s.observe(context.Background(), start, err)
		cancel()
		if err != nil {
			s.probeErrors.Add(1)
		}
	}
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	return Stats{
		Puts: s.puts.Load(), PutBytes: s.putBytes.Load(), PutErrors: s.putErrors.Load(),
		Gets: s.gets.Load(), GetBytes: s.getBytes.Load(), GetErrors: s.getErrors.Load(),
		ReplicaGets: s.replicaGets.Load(), ReplicaFallbacks: s.replicaFallbacks.Load(),
		ReplicaMissRatio: s.replicaWindow.ratio(), MeanLatency: s.health.MeanLatency(),
		Deletes: s.deletes.Load(), Lists: s.lists.Load(), Probes: s.probes.Load(),
		LastPutLatency: time.Duration(s.lastPut.Load()), LastGetLatency: time.Duration(s.lastGet.Load()),
		HealthState: s.Health(), HealthStateChanges: s.stateChanges.Load(), ProbeErrors: s.probeErrors.Load(),
	}
}
