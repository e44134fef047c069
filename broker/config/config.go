// Package config reads every KAFSCALE_* environment variable of the broker once, into a
// typed struct, and says clearly which values are wrong. docs/runtime-settings.md lists the
// same variables with the same defaults; a test keeps the two in step.
package config

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/kafscale/kafscale/broker/acl"
	"github.com/kafscale/kafscale/internal/env"
)

// Broker is the broker's whole configuration.
type Broker struct {
	// NodeID is this broker's id in the metadata snapshot (KAFSCALE_BROKER_ID). It is 0
	// when AutoNodeID is set, until the broker has claimed an id in etcd.
	NodeID int32
	// AutoNodeID is KAFSCALE_BROKER_ID=auto: at startup the broker claims the lowest node id
	// no live broker holds (an ids/<id> key under its etcd lease).
	AutoNodeID bool
	// ListenAddr is the Kafka listener, host:port (KAFSCALE_BROKER_ADDR).
	ListenAddr string
	// AdvertisedHost and AdvertisedPort are what clients are told to connect to
	// (KAFSCALE_BROKER_HOST, KAFSCALE_BROKER_PORT); they default to the listener's host
	// (the machine's hostname when it listens on all interfaces) and port.
	AdvertisedHost string
	AdvertisedPort int32
	// Rack is reported in Metadata (KAFSCALE_BROKER_RACK).
	Rack string
	// MetricsAddr serves /metrics, /healthz and /readyz (KAFSCALE_METRICS_ADDR).
	MetricsAddr string
	// ControlAddr serves the control-plane gRPC service (Drain, Status), host:port
	// (KAFSCALE_CONTROL_ADDR); empty: no control service.
	ControlAddr string
	// PodName is published in the broker's registration so the operator can find the broker
	// of a pod (KAFSCALE_POD_NAME, default the host name).
	PodName string
	// Pprof adds Go's /debug/pprof/ handlers to the metrics listener (KAFSCALE_PPROF):
	// profiles for `make bench` and for debugging, off by default.
	Pprof bool
	// LogLevel is debug, info, warn or error (KAFSCALE_LOG_LEVEL).
	LogLevel slog.Level
	// StartupTimeout bounds reading metadata from etcd and writing the S3 probe object
	// before the broker serves (KAFSCALE_STARTUP_TIMEOUT_SEC).
	StartupTimeout time.Duration
	// ShutdownTimeout bounds the SIGTERM drain: finishing requests, flushing, releasing
	// leadership (KAFSCALE_SHUTDOWN_TIMEOUT_SEC).
	ShutdownTimeout time.Duration
	// LeaseTTL is the etcd lease of the broker's liveness key (KAFSCALE_BROKER_LEASE_TTL_SEC).
	LeaseTTL time.Duration

	// Kafka protocol.
	MaxRequestBytes int32 // KAFSCALE_MAX_REQUEST_BYTES
	// MaxInflightRequestBytes bounds the request bytes being handled, all connections
	// together (KAFSCALE_MAX_INFLIGHT_REQUEST_BYTES).
	MaxInflightRequestBytes int64
	AutoCreateTopics        bool  // KAFSCALE_AUTO_CREATE_TOPICS
	AutoCreatePartitions    int32 // KAFSCALE_AUTO_CREATE_PARTITIONS
	ProduceSyncFlush        bool  // KAFSCALE_PRODUCE_SYNC_FLUSH
	AllowAdminAPIs          bool  // KAFSCALE_ALLOW_ADMIN_APIS

	// Security.
	ACLEnabled bool      // KAFSCALE_ACL_ENABLED: enforce ACL (fail closed)
	ACL        acl.Rules // the document of KAFSCALE_ACL_JSON, KAFSCALE_ACL_CONFIG_JSON or KAFSCALE_ACL_FILE, parsed
	// ACLSource names where the document came from ("KAFSCALE_ACL_FILE=/etc/acl.json"), for
	// log lines; empty without a document.
	ACLSource string
	// ACLProblem is why the ACL document could not be used: unreadable file or invalid
	// document. It does not stop the broker: with ACLs enabled the broker then denies every
	// request, or allows every request with ACLFailOpen (KAFSCALE_ACL_FAIL_OPEN).
	ACLProblem error
	// ACLFailOpen allows every request when ACLs are enabled but the document is missing or
	// invalid (KAFSCALE_ACL_FAIL_OPEN, default false: deny everything).
	ACLFailOpen     bool
	PrincipalSource string // KAFSCALE_PRINCIPAL_SOURCE: client_id, remote_addr or proxy_addr
	ProxyProtocol   bool   // KAFSCALE_PROXY_PROTOCOL: require a PROXY v1/v2 header on every connection

	// MaxInflightPerConn bounds the requests of one connection being handled at once
	// (pipelining). Not settable.
	MaxInflightPerConn int

	// TraceKafka logs one line per Kafka request and one per response (KAFSCALE_TRACE_KAFKA).
	TraceKafka bool
	// ThroughputWindow is the sliding window of the rate gauges kafscale_produce_rps and
	// kafscale_fetch_rps (KAFSCALE_THROUGHPUT_WINDOW_SEC).
	ThroughputWindow time.Duration

	Etcd      Etcd
	S3        S3
	Storage   Storage
	Groups    Groups
	Namespace string // KAFSCALE_CLUSTER_NAMESPACE: etcd keys live under /kafscale/<namespace>/<cluster>/
	Cluster   string // KAFSCALE_CLUSTER_NAME
}

// The values of KAFSCALE_PRINCIPAL_SOURCE.
const (
	PrincipalClientID   = "client_id"   // User:<client id of the request>
	PrincipalRemoteAddr = "remote_addr" // User:<TCP peer IP>
	PrincipalProxyAddr  = "proxy_addr"  // User:<source IP of the PROXY header>
)

// Etcd is how the broker reaches etcd.
type Etcd struct {
	Endpoints      []string      // KAFSCALE_ETCD_ENDPOINTS, comma-separated
	Username       string        // KAFSCALE_ETCD_USERNAME
	Password       string        // KAFSCALE_ETCD_PASSWORD
	DialTimeout    time.Duration // KAFSCALE_ETCD_DIAL_TIMEOUT_MS
	RequestTimeout time.Duration // KAFSCALE_ETCD_REQUEST_TIMEOUT_MS
}

// S3 is the object store and its health thresholds.
type S3 struct {
	Bucket       string // KAFSCALE_S3_BUCKET (required)
	Region       string // KAFSCALE_S3_REGION
	Endpoint     string // KAFSCALE_S3_ENDPOINT
	PathStyle    bool   // KAFSCALE_S3_PATH_STYLE
	AccessKey    string // KAFSCALE_S3_ACCESS_KEY
	SecretKey    string // KAFSCALE_S3_SECRET_KEY
	SessionToken string // KAFSCALE_S3_SESSION_TOKEN
	KMSKeyID     string // KAFSCALE_S3_KMS_KEY_ID or its alias KAFSCALE_S3_KMS_ARN
	// UseMemory replaces S3 with an in-memory store inside the broker process
	// (KAFSCALE_USE_MEMORY_S3): for development only, nothing stored survives a restart.
	UseMemory           bool
	Namespace           string        // KAFSCALE_S3_NAMESPACE
	ReadBucket          string        // KAFSCALE_S3_READ_BUCKET
	ReadRegion          string        // KAFSCALE_S3_READ_REGION
	ReadEndpoint        string        // KAFSCALE_S3_READ_ENDPOINT
	RequestTimeout      time.Duration // KAFSCALE_S3_REQUEST_TIMEOUT_MS
	HealthWindow        time.Duration // KAFSCALE_S3_HEALTH_WINDOW_SEC
	LatencyWarn         time.Duration // KAFSCALE_S3_LATENCY_WARN_MS
	LatencyCrit         time.Duration // KAFSCALE_S3_LATENCY_CRIT_MS
	ErrorRateWarn       float64       // KAFSCALE_S3_ERROR_RATE_WARN
	ErrorRateCrit       float64       // KAFSCALE_S3_ERROR_RATE_CRIT
	FailuresUnavailable int           // KAFSCALE_S3_FAILURES_UNAVAILABLE
	ProbeInterval       time.Duration // KAFSCALE_S3_PROBE_INTERVAL_MS
}

// Storage is the produce buffer and the read cache.
type Storage struct {
	SegmentBytes      int           // KAFSCALE_SEGMENT_BYTES
	FlushInterval     time.Duration // KAFSCALE_FLUSH_INTERVAL_MS
	FlushParallelism  int           // KAFSCALE_FLUSH_PARALLELISM
	CacheBytes        int64         // KAFSCALE_CACHE_BYTES
	ReadaheadSegments int           // KAFSCALE_READAHEAD_SEGMENTS
	RetentionCheck    time.Duration // KAFSCALE_RETENTION_CHECK_INTERVAL_MS
	SweepGrace        time.Duration // KAFSCALE_RETENTION_SWEEP_GRACE_MS
	// ProducerIDExpiration is how long partitions remember an idle idempotent producer.
	ProducerIDExpiration time.Duration // KAFSCALE_PRODUCER_ID_EXPIRATION_MS
	// MaxTxnOps and MaxTxnBytes split a flush's commits into etcd transactions: etcd's
	// default --max-txn-ops, and 1 MiB under its 1.5 MiB request limit. Not settable.
	MaxTxnOps, MaxTxnBytes int
}

// Groups tunes the consumer group coordinator.
type Groups struct {
	MinSessionTimeout     time.Duration // KAFSCALE_GROUP_MIN_SESSION_TIMEOUT_MS
	MaxSessionTimeout     time.Duration // KAFSCALE_GROUP_MAX_SESSION_TIMEOUT_MS
	InitialRebalanceDelay time.Duration // KAFSCALE_GROUP_INITIAL_REBALANCE_DELAY_MS
	// OffsetsRetention: an empty group committing nothing is deleted, offsets and all, after
	// this long, and a stable consumer group's offsets of topics it no longer subscribes to
	// once committed this long ago (KAFSCALE_OFFSETS_RETENTION_MS).
	OffsetsRetention time.Duration
	// OffsetsRetentionCheckInterval is how often groups are checked for that
	// (KAFSCALE_OFFSETS_RETENTION_CHECK_INTERVAL_MS).
	OffsetsRetentionCheckInterval time.Duration
	// MaxMetadataBytes caps the metadata string of a committed offset (Kafka's
	// offset.metadata.max.bytes default). Not settable.
	MaxMetadataBytes int
}

// Load reads the configuration from the process environment.
func Load() (*Broker, error) { return Parse(os.LookupEnv) }

// Defaults returns the configuration of an environment that sets nothing: every default of
// the broker, in the one place they are written (Parse). Its S3 bucket is empty. Tests and
// tools start from it and change what they need.
func Defaults() *Broker {
	c, _ := parse(env.New(func(string) (string, bool) { return "", false }))
	return c
}

// Parse reads the configuration through lookup (os.LookupEnv in production). Every bad value
// is reported, not just the first.
func Parse(lookup func(string) (string, bool)) (*Broker, error) {
	c, err := parse(env.New(lookup))
	if err != nil {
		return nil, err
	}
	return c, nil
}

// parse returns the configuration, with the defaults in place of bad values, and the error
// listing them.
func parse(p *env.Parser) (*Broker, error) {
	c := &Broker{}
	if v, ok := p.Raw("KAFSCALE_BROKER_ID"); ok {
		if strings.EqualFold(v, "auto") {
			c.AutoNodeID = true
		} else if n, err := strconv.ParseInt(v, 10, 32); err == nil && n >= 0 {
			c.NodeID = int32(n)
		} else {
			p.Fail("KAFSCALE_BROKER_ID=%q: want auto or a whole number from 0 to %d", v, math.MaxInt32)
		}
	}
	c.ListenAddr = p.Str("KAFSCALE_BROKER_ADDR", ":9092")
	listenHost, listenPort := p.HostPort("KAFSCALE_BROKER_ADDR", c.ListenAddr)
	c.AdvertisedHost = p.Str("KAFSCALE_BROKER_HOST", env.AdvertisedHost(listenHost))
	c.AdvertisedPort = int32(p.Int("KAFSCALE_BROKER_PORT", int64(listenPort), 1, 65535))
	c.Rack = p.Str("KAFSCALE_BROKER_RACK", "")
	c.MetricsAddr = p.Str("KAFSCALE_METRICS_ADDR", ":9093")
	p.HostPort("KAFSCALE_METRICS_ADDR", c.MetricsAddr)
	c.ControlAddr = p.Str("KAFSCALE_CONTROL_ADDR", "")
	if c.ControlAddr != "" {
		p.HostPort("KAFSCALE_CONTROL_ADDR", c.ControlAddr)
	}
	hostname, _ := os.Hostname()
	c.PodName = p.Str("KAFSCALE_POD_NAME", hostname)
	c.Pprof = p.Bool("KAFSCALE_PPROF", false)
	c.LogLevel = p.Level("KAFSCALE_LOG_LEVEL", slog.LevelInfo)
	c.StartupTimeout = p.Seconds("KAFSCALE_STARTUP_TIMEOUT_SEC", 30, 1)
	c.ShutdownTimeout = p.Seconds("KAFSCALE_SHUTDOWN_TIMEOUT_SEC", 30, 1)
	c.LeaseTTL = p.Seconds("KAFSCALE_BROKER_LEASE_TTL_SEC", 10, 2)

	c.MaxRequestBytes = int32(p.Int("KAFSCALE_MAX_REQUEST_BYTES", 100<<20, 1<<10, math.MaxInt32))
	c.MaxInflightRequestBytes = p.Int("KAFSCALE_MAX_INFLIGHT_REQUEST_BYTES", 32<<20, 1<<20, 1<<40)
	c.AutoCreateTopics = p.Bool("KAFSCALE_AUTO_CREATE_TOPICS", true)
	c.AutoCreatePartitions = int32(p.Int("KAFSCALE_AUTO_CREATE_PARTITIONS", 1, 1, 10000))
	c.ProduceSyncFlush = p.Bool("KAFSCALE_PRODUCE_SYNC_FLUSH", true)
	c.AllowAdminAPIs = p.Bool("KAFSCALE_ALLOW_ADMIN_APIS", true)
	c.MaxInflightPerConn = 64

	c.ACLEnabled = p.Bool("KAFSCALE_ACL_ENABLED", false)
	c.ACLFailOpen = p.Bool("KAFSCALE_ACL_FAIL_OPEN", false)
	aclDocument(p, c)
	c.ProxyProtocol = p.Bool("KAFSCALE_PROXY_PROTOCOL", false)
	c.PrincipalSource = p.Str("KAFSCALE_PRINCIPAL_SOURCE", PrincipalClientID)
	switch c.PrincipalSource {
	case PrincipalClientID, PrincipalRemoteAddr:
	case PrincipalProxyAddr:
		if !c.ProxyProtocol {
			p.Fail("KAFSCALE_PRINCIPAL_SOURCE=proxy_addr needs KAFSCALE_PROXY_PROTOCOL=true (the address comes from the PROXY protocol header)")
		}
	default:
		p.Fail("KAFSCALE_PRINCIPAL_SOURCE=%q: want client_id, remote_addr or proxy_addr", c.PrincipalSource)
	}

	c.TraceKafka = p.Bool("KAFSCALE_TRACE_KAFKA", false)
	c.ThroughputWindow = p.Seconds("KAFSCALE_THROUGHPUT_WINDOW_SEC", 60, 1)
	if c.ThroughputWindow > time.Hour {
		p.Fail("KAFSCALE_THROUGHPUT_WINDOW_SEC=%d: want a whole number from 1 to 3600", int64(c.ThroughputWindow/time.Second))
		c.ThroughputWindow = time.Minute
	}

	c.Etcd = Etcd{
		Endpoints:      p.List("KAFSCALE_ETCD_ENDPOINTS", "http://127.0.0.1:2379"),
		Username:       p.Str("KAFSCALE_ETCD_USERNAME", ""),
		Password:       p.Str("KAFSCALE_ETCD_PASSWORD", ""),
		DialTimeout:    p.Millis("KAFSCALE_ETCD_DIAL_TIMEOUT_MS", 5000, 1),
		RequestTimeout: p.Millis("KAFSCALE_ETCD_REQUEST_TIMEOUT_MS", 5000, 1),
	}
	c.Namespace = p.Str("KAFSCALE_CLUSTER_NAMESPACE", "default")
	c.Cluster = p.Str("KAFSCALE_CLUSTER_NAME", "kafscale")
	p.KeySegment("KAFSCALE_CLUSTER_NAMESPACE", c.Namespace)
	p.KeySegment("KAFSCALE_CLUSTER_NAME", c.Cluster)

	useMemory := p.Bool("KAFSCALE_USE_MEMORY_S3", false)
	bucket := p.Str("KAFSCALE_S3_BUCKET", "")
	if bucket == "" {
		if useMemory {
			bucket = "kafscale" // the in-memory store has any bucket asked for
		} else {
			p.Required("KAFSCALE_S3_BUCKET")
		}
	}
	c.S3 = S3{
		Bucket:              bucket,
		UseMemory:           useMemory,
		Region:              p.Str("KAFSCALE_S3_REGION", "us-east-1"),
		Endpoint:            p.URL("KAFSCALE_S3_ENDPOINT"),
		PathStyle:           p.Bool("KAFSCALE_S3_PATH_STYLE", false),
		AccessKey:           p.Str("KAFSCALE_S3_ACCESS_KEY", ""),
		SecretKey:           p.Str("KAFSCALE_S3_SECRET_KEY", ""),
		SessionToken:        p.Str("KAFSCALE_S3_SESSION_TOKEN", ""),
		KMSKeyID:            kmsKey(p),
		Namespace:           p.Str("KAFSCALE_S3_NAMESPACE", "kafscale"),
		ReadBucket:          p.Str("KAFSCALE_S3_READ_BUCKET", ""),
		ReadRegion:          p.Str("KAFSCALE_S3_READ_REGION", ""),
		ReadEndpoint:        p.URL("KAFSCALE_S3_READ_ENDPOINT"),
		RequestTimeout:      p.Millis("KAFSCALE_S3_REQUEST_TIMEOUT_MS", 10000, 1),
		HealthWindow:        p.Seconds("KAFSCALE_S3_HEALTH_WINDOW_SEC", 60, 1),
		LatencyWarn:         p.Millis("KAFSCALE_S3_LATENCY_WARN_MS", 500, 1),
		LatencyCrit:         p.Millis("KAFSCALE_S3_LATENCY_CRIT_MS", 2000, 1),
		ErrorRateWarn:       p.Fraction("KAFSCALE_S3_ERROR_RATE_WARN", 0.2),
		ErrorRateCrit:       p.Fraction("KAFSCALE_S3_ERROR_RATE_CRIT", 0.6),
		FailuresUnavailable: int(p.Int("KAFSCALE_S3_FAILURES_UNAVAILABLE", 3, 1, 1000)),
		ProbeInterval:       p.Millis("KAFSCALE_S3_PROBE_INTERVAL_MS", 1000, 1),
	}
	if (c.S3.AccessKey == "") != (c.S3.SecretKey == "") {
		p.Fail("KAFSCALE_S3_ACCESS_KEY and KAFSCALE_S3_SECRET_KEY must be set together (or both left empty for the default AWS credential chain)")
	}
	if c.S3.LatencyWarn > c.S3.LatencyCrit {
		p.Fail("KAFSCALE_S3_LATENCY_WARN_MS (%d) must not exceed KAFSCALE_S3_LATENCY_CRIT_MS (%d)", c.S3.LatencyWarn.Milliseconds(), c.S3.LatencyCrit.Milliseconds())
	}
	if c.S3.ErrorRateWarn > c.S3.ErrorRateCrit {
		p.Fail("KAFSCALE_S3_ERROR_RATE_WARN (%g) must not exceed KAFSCALE_S3_ERROR_RATE_CRIT (%g)", c.S3.ErrorRateWarn, c.S3.ErrorRateCrit)
	}

	c.Storage = Storage{
		SegmentBytes:      int(p.Int("KAFSCALE_SEGMENT_BYTES", 4<<20, 1<<10, 1<<30)),
		FlushInterval:     p.Millis("KAFSCALE_FLUSH_INTERVAL_MS", 500, 1),
		FlushParallelism:  int(p.Int("KAFSCALE_FLUSH_PARALLELISM", 4, 1, 64)),
		CacheBytes:        p.Int("KAFSCALE_CACHE_BYTES", 256<<20, 0, math.MaxInt64),
		ReadaheadSegments: int(p.Int("KAFSCALE_READAHEAD_SEGMENTS", 2, 0, 64)),
		RetentionCheck:    p.Millis("KAFSCALE_RETENTION_CHECK_INTERVAL_MS", 60000, 1000),
		// An object must outlive its flush before an unreferenced one may be deleted
		// (checked below): at least a minute.
		SweepGrace:           p.Millis("KAFSCALE_RETENTION_SWEEP_GRACE_MS", 600000, 60000),
		ProducerIDExpiration: p.Millis("KAFSCALE_PRODUCER_ID_EXPIRATION_MS", 86400000, 1000),
		MaxTxnOps:            128,
		MaxTxnBytes:          1 << 20,
	}
	// A flush may commit up to 2 × the S3 request bound + the etcd bound after naming its
	// object; the sweeper must not delete an unreferenced object that young.
	if flush := 2*c.S3.RequestTimeout + c.Etcd.RequestTimeout; c.Storage.SweepGrace <= flush {
		p.Fail("KAFSCALE_RETENTION_SWEEP_GRACE_MS (%d) must exceed 2 × KAFSCALE_S3_REQUEST_TIMEOUT_MS + KAFSCALE_ETCD_REQUEST_TIMEOUT_MS (%d): a flush may still commit an object that young",
			c.Storage.SweepGrace.Milliseconds(), flush.Milliseconds())
	}
	c.Groups = Groups{
		MinSessionTimeout:     p.Millis("KAFSCALE_GROUP_MIN_SESSION_TIMEOUT_MS", 6000, 1),
		MaxSessionTimeout:     p.Millis("KAFSCALE_GROUP_MAX_SESSION_TIMEOUT_MS", 1800000, 1),
		InitialRebalanceDelay: p.Millis("KAFSCALE_GROUP_INITIAL_REBALANCE_DELAY_MS", 3000, 0),
		// Kafka's offsets.retention.minutes (7 days) and its check interval (10 minutes).
		OffsetsRetention:              p.Millis("KAFSCALE_OFFSETS_RETENTION_MS", 604800000, 1000),
		OffsetsRetentionCheckInterval: p.Millis("KAFSCALE_OFFSETS_RETENTION_CHECK_INTERVAL_MS", 600000, 100),
		MaxMetadataBytes:              4096,
	}
	if c.Groups.MinSessionTimeout > c.Groups.MaxSessionTimeout {
		p.Fail("KAFSCALE_GROUP_MIN_SESSION_TIMEOUT_MS must not exceed KAFSCALE_GROUP_MAX_SESSION_TIMEOUT_MS")
	}
	return c, p.Err("broker")
}

// aclDocument reads the ACL document from whichever of its three variables is set:
// KAFSCALE_ACL_JSON (the guide's name) or KAFSCALE_ACL_CONFIG_JSON (the same, older name),
// inline, or KAFSCALE_ACL_FILE, a path. Two different documents are a configuration error:
// the broker cannot know which one was meant. The two inline names holding the same text
// are one document. A file that cannot be read or a document that does not parse is not a
// configuration error but an ACLProblem: the broker starts and fails closed (or open).
func aclDocument(p *env.Parser, c *Broker) {
	type source struct{ name, text string }
	var inline []source
	for _, name := range []string{"KAFSCALE_ACL_JSON", "KAFSCALE_ACL_CONFIG_JSON"} {
		if v, ok := p.Raw(name); ok {
			inline = append(inline, source{name, v})
		}
	}
	file, hasFile := p.Raw("KAFSCALE_ACL_FILE")
	switch {
	case len(inline) == 2 && inline[0].text != inline[1].text:
		p.Fail("KAFSCALE_ACL_JSON and KAFSCALE_ACL_CONFIG_JSON hold different ACL documents: set only one (KAFSCALE_ACL_JSON)")
		return
	case len(inline) > 0 && hasFile:
		p.Fail("%s and KAFSCALE_ACL_FILE are both set: set only one of them (an inline document or a file)", inline[0].name)
		return
	}
	var text string
	switch {
	case len(inline) > 0:
		c.ACLSource, text = inline[0].name, inline[0].text
	case hasFile:
		c.ACLSource = "KAFSCALE_ACL_FILE=" + file
		b, err := os.ReadFile(file)
		if err != nil {
			c.ACLProblem = fmt.Errorf("KAFSCALE_ACL_FILE: read the ACL document: %w", err)
			return
		}
		if strings.TrimSpace(string(b)) == "" {
			c.ACLProblem = fmt.Errorf("KAFSCALE_ACL_FILE=%s: the file is empty", file)
			return
		}
		text = string(b)
	default:
		return
	}
	rules, err := acl.Parse(text)
	if err != nil {
		c.ACLProblem = fmt.Errorf("%s: %w", c.ACLSource, err)
		return
	}
	c.ACL = rules
}

// kmsKey reads the SSE-KMS key from KAFSCALE_S3_KMS_ARN (the guide's name) or
// KAFSCALE_S3_KMS_KEY_ID; both set to different keys is an error.
func kmsKey(p *env.Parser) string {
	arn, hasARN := p.Raw("KAFSCALE_S3_KMS_ARN")
	id, hasID := p.Raw("KAFSCALE_S3_KMS_KEY_ID")
	if hasARN && hasID && arn != id {
		p.Fail("KAFSCALE_S3_KMS_ARN=%q and KAFSCALE_S3_KMS_KEY_ID=%q name different keys: set only one", arn, id)
	}
	if hasARN {
		return arn
	}
	return id
}

// Error lists every problem found in the configuration.
type Error = env.Error

// Unknown returns the KAFSCALE_* variables in environ that the broker does not read — most
// likely typos — sorted.
func Unknown(environ []string) []string {
	return env.Unknown(environ, Names(), func(name string) bool {
		return strings.HasPrefix(name, "KAFSCALE_") && !ignoredPrefix(name)
	})
}

// ignoredPrefix names variables of other components and of the tests, which may share the
// environment of a broker without being typos. Broker variables sharing such a prefix
// (KAFSCALE_PROXY_PROTOCOL) are in known, which Unknown checks first.
func ignoredPrefix(name string) bool {
	for _, p := range []string{"KAFSCALE_OPERATOR_", "KAFSCALE_PROXY_", "KAFSCALE_UI_", "KAFSCALE_CONSOLE_", "KAFSCALE_TEST_", "KAFSCALE_LOCAL_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// Names returns every variable Parse reads, sorted.
func Names() []string { return names }

var names = env.Names(func(lookup func(string) (string, bool)) { _, _ = Parse(lookup) })
