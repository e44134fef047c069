// Package config reads the operator's KAFSCALE_OPERATOR_* environment (set by the Helm chart,
// see docs/runtime-settings.md) once, into a typed struct.
package config

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	envparse "github.com/kafscale/kafscale/internal/env"
)

// Operator is the operator's configuration.
type Operator struct {
	Namespace              string            // KAFSCALE_OPERATOR_NAMESPACE (required)
	PodName                string            // KAFSCALE_OPERATOR_POD_NAME, default the host name
	LeaderKey              string            // KAFSCALE_OPERATOR_LEADER_KEY
	LeaderTTL              time.Duration     // KAFSCALE_OPERATOR_LEADER_TTL_SEC
	EtcdEndpoints          []string          // KAFSCALE_OPERATOR_ETCD_ENDPOINTS
	LeaderEtcdEndpoints    []string          // KAFSCALE_OPERATOR_LEADER_ETCD_ENDPOINTS, default EtcdEndpoints; none: a Kubernetes Lease
	BrokerImage            string            // KAFSCALE_OPERATOR_BROKER_IMAGE (required)
	EtcdImage              string            // KAFSCALE_OPERATOR_ETCD_IMAGE, of managed etcd members
	BrokerImagePullPolicy  corev1.PullPolicy // KAFSCALE_OPERATOR_BROKER_IMAGE_PULL_POLICY
	BrokerEnvConfigMap     string            // KAFSCALE_OPERATOR_BROKER_ENV_CONFIGMAP
	ImagePullSecrets       []string          // KAFSCALE_OPERATOR_IMAGE_PULL_SECRETS
	MetricsAddr            string            // KAFSCALE_OPERATOR_METRICS_ADDR
	HealthAddr             string            // KAFSCALE_OPERATOR_HEALTH_ADDR
	SnapshotPreflightEvery time.Duration     // KAFSCALE_OPERATOR_ETCD_SNAPSHOT_PREFLIGHT_INTERVAL_SEC
	SnapshotPrefix         string            // KAFSCALE_OPERATOR_ETCD_SNAPSHOT_PREFIX
	SnapshotSchedule       string            // KAFSCALE_OPERATOR_ETCD_SNAPSHOT_SCHEDULE
	OperatorImage          string            // KAFSCALE_OPERATOR_IMAGE, else the operator pod's own image
	// BrokerBinary is the broker binary's path in the broker image; the preStop hook runs
	// `<BrokerBinary> drain-wait` (KAFSCALE_OPERATOR_BROKER_BINARY).
	BrokerBinary string
	// BrokerDrainWait bounds the preStop hook's wait for the operator's drain
	// (KAFSCALE_OPERATOR_BROKER_DRAIN_WAIT_SEC). It and the broker's SIGTERM drain
	// (KAFSCALE_SHUTDOWN_TIMEOUT_SEC, 30 s) share the pod's 60 s termination grace period.
	BrokerDrainWait time.Duration
	// BrokerDrainTimeout bounds one Drain call to a broker's control service
	// (KAFSCALE_OPERATOR_BROKER_DRAIN_TIMEOUT_SEC).
	BrokerDrainTimeout time.Duration
	// EtcdStorageSize and EtcdStorageClass are the managed etcd members' claims when the
	// KafscaleCluster's spec.etcd.storage names none (KAFSCALE_OPERATOR_ETCD_STORAGE_SIZE,
	// default 10Gi; KAFSCALE_OPERATOR_ETCD_STORAGE_CLASS, default the cluster's default class).
	// Claims are made once, with the StatefulSet: a change applies to new clusters only.
	EtcdStorageSize  resource.Quantity
	EtcdStorageClass string
	// SnapshotBucket is where every cluster's etcd snapshots go
	// (KAFSCALE_OPERATOR_ETCD_SNAPSHOT_BUCKET). Empty means a dedicated bucket per cluster,
	// kafscale-etcd-<namespace>-<cluster>, as the operations guide has it.
	SnapshotBucket string
	// SnapshotS3Endpoint is the snapshot bucket's S3 endpoint
	// (KAFSCALE_OPERATOR_ETCD_SNAPSHOT_S3_ENDPOINT); empty means the cluster's spec.s3.endpoint.
	SnapshotS3Endpoint string
	// SnapshotStaleAfter is the age past which the newest snapshot counts as stale
	// (KAFSCALE_OPERATOR_ETCD_SNAPSHOT_STALE_AFTER_SEC, default 7200): the operator exports
	// it as kafscale_operator_etcd_snapshot_stale, which the chart's alert reads.
	SnapshotStaleAfter time.Duration
	// SnapshotCreateBucket creates a missing snapshot bucket in the preflight
	// (KAFSCALE_OPERATOR_ETCD_SNAPSHOT_CREATE_BUCKET).
	SnapshotCreateBucket bool
	// SnapshotProtectBucket turns on versioning and the public access block of the snapshot
	// bucket in the preflight (KAFSCALE_OPERATOR_ETCD_SNAPSHOT_PROTECT_BUCKET).
	SnapshotProtectBucket bool
	// SnapshotSkipPreflight leaves out the preflight's probe write
	// (KAFSCALE_OPERATOR_ETCD_SNAPSHOT_SKIP_PREFLIGHT).
	SnapshotSkipPreflight bool
	// Moot lists the guide's settings that are accepted but do nothing here, each with why;
	// the operator logs each once at startup.
	Moot []string
}

// Broker drain defaults. BrokerTerminationGrace is the broker pods'
// terminationGracePeriodSeconds: the preStop wait plus the broker's SIGTERM drain
// (KAFSCALE_SHUTDOWN_TIMEOUT_SEC, 30 s) must fit in it.
const (
	BrokerTerminationGrace    = 60 * time.Second
	DefaultBrokerBinary       = "/kafscale-broker"
	DefaultBrokerDrainWait    = 25 * time.Second
	DefaultBrokerDrainTimeout = 30 * time.Second
)

// DefaultSnapshotStaleAfter is the snapshot age the stale alert fires at.
const DefaultSnapshotStaleAfter = 7200 * time.Second

// DefaultEtcdStorageSize is the claim size of each managed etcd member.
const DefaultEtcdStorageSize = "10Gi"

// DefaultEtcdImage runs managed etcd members: the etcd release the tests run against.
const DefaultEtcdImage = "gcr.io/etcd-development/etcd:v3.6.16"

// Load reads the process environment.
func Load() (*Operator, error) { return Parse(os.LookupEnv) }

// Parse reads the configuration through lookup. Every bad value is reported, not just the
// first.
func Parse(lookup func(string) (string, bool)) (*Operator, error) {
	p := parser{envparse.New(lookup)}
	host, _ := os.Hostname()
	c := &Operator{
		Namespace:              p.required("KAFSCALE_OPERATOR_NAMESPACE"),
		PodName:                p.str("KAFSCALE_OPERATOR_POD_NAME", host),
		LeaderTTL:              time.Duration(p.int("KAFSCALE_OPERATOR_LEADER_TTL_SEC", 5, 1, 3600)) * time.Second,
		EtcdEndpoints:          p.urls("KAFSCALE_OPERATOR_ETCD_ENDPOINTS"),
		BrokerImage:            p.required("KAFSCALE_OPERATOR_BROKER_IMAGE"),
		EtcdImage:              p.str("KAFSCALE_OPERATOR_ETCD_IMAGE", DefaultEtcdImage),
		BrokerImagePullPolicy:  corev1.PullPolicy(p.oneOf("KAFSCALE_OPERATOR_BROKER_IMAGE_PULL_POLICY", "IfNotPresent", "Always", "IfNotPresent", "Never")),
		BrokerEnvConfigMap:     p.str("KAFSCALE_OPERATOR_BROKER_ENV_CONFIGMAP", ""),
		ImagePullSecrets:       p.list("KAFSCALE_OPERATOR_IMAGE_PULL_SECRETS"),
		MetricsAddr:            p.str("KAFSCALE_OPERATOR_METRICS_ADDR", ":8080"),
		HealthAddr:             p.str("KAFSCALE_OPERATOR_HEALTH_ADDR", ":8081"),
		SnapshotPreflightEvery: time.Duration(p.int("KAFSCALE_OPERATOR_ETCD_SNAPSHOT_PREFLIGHT_INTERVAL_SEC", 300, 1, 86400)) * time.Second,
		SnapshotPrefix:         strings.Trim(p.str("KAFSCALE_OPERATOR_ETCD_SNAPSHOT_PREFIX", "etcd-snapshots"), "/"),
		SnapshotSchedule:       p.str("KAFSCALE_OPERATOR_ETCD_SNAPSHOT_SCHEDULE", "0 * * * *"),
		OperatorImage:          p.str("KAFSCALE_OPERATOR_IMAGE", ""),
		BrokerBinary:           p.str("KAFSCALE_OPERATOR_BROKER_BINARY", DefaultBrokerBinary),
		// Below the 60 s grace period minus the broker's 30 s SIGTERM drain budget.
		BrokerDrainWait:    time.Duration(p.int("KAFSCALE_OPERATOR_BROKER_DRAIN_WAIT_SEC", int64(DefaultBrokerDrainWait/time.Second), 1, 59)) * time.Second,
		BrokerDrainTimeout: time.Duration(p.int("KAFSCALE_OPERATOR_BROKER_DRAIN_TIMEOUT_SEC", int64(DefaultBrokerDrainTimeout/time.Second), 1, 600)) * time.Second,
	}
	c.EtcdStorageSize = resource.MustParse(DefaultEtcdStorageSize)
	if v := p.str("KAFSCALE_OPERATOR_ETCD_STORAGE_SIZE", ""); v != "" {
		q, err := resource.ParseQuantity(v)
		if err != nil || q.Sign() <= 0 {
			p.fail("KAFSCALE_OPERATOR_ETCD_STORAGE_SIZE=%q: must be a positive storage quantity such as 10Gi", v)
		} else {
			c.EtcdStorageSize = q
		}
	}
	c.EtcdStorageClass = p.str("KAFSCALE_OPERATOR_ETCD_STORAGE_CLASS", "")
	c.SnapshotBucket = p.str("KAFSCALE_OPERATOR_ETCD_SNAPSHOT_BUCKET", "")
	if b := c.SnapshotBucket; b != "" && !validBucket(b) {
		p.fail("KAFSCALE_OPERATOR_ETCD_SNAPSHOT_BUCKET=%q: must be an S3 bucket name (3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit)", b)
	}
	if e := p.str("KAFSCALE_OPERATOR_ETCD_SNAPSHOT_S3_ENDPOINT", ""); e != "" {
		if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.fail("KAFSCALE_OPERATOR_ETCD_SNAPSHOT_S3_ENDPOINT=%q: must be an http(s):// URL", e)
		}
		c.SnapshotS3Endpoint = e
	}
	c.SnapshotStaleAfter = time.Duration(p.int("KAFSCALE_OPERATOR_ETCD_SNAPSHOT_STALE_AFTER_SEC", int64(DefaultSnapshotStaleAfter/time.Second), 1, 31*86400)) * time.Second
	c.SnapshotCreateBucket = p.bool("KAFSCALE_OPERATOR_ETCD_SNAPSHOT_CREATE_BUCKET")
	c.SnapshotProtectBucket = p.bool("KAFSCALE_OPERATOR_ETCD_SNAPSHOT_PROTECT_BUCKET")
	c.SnapshotSkipPreflight = p.bool("KAFSCALE_OPERATOR_ETCD_SNAPSHOT_SKIP_PREFLIGHT")
	// The guide's snapshot Jobs ran etcdctl and the AWS CLI from two images; here one Job runs
	// the operator's own image (KAFSCALE_OPERATOR_IMAGE), which does both.
	for _, name := range []string{"KAFSCALE_OPERATOR_ETCD_SNAPSHOT_ETCDCTL_IMAGE", "KAFSCALE_OPERATOR_ETCD_SNAPSHOT_IMAGE"} {
		if v := p.str(name, ""); v != "" {
			c.Moot = append(c.Moot, fmt.Sprintf("%s=%s is ignored: snapshot Jobs run the operator's own image (KAFSCALE_OPERATOR_IMAGE), which takes the snapshot and uploads it itself", name, v))
		}
	}
	if !strings.HasPrefix(c.BrokerBinary, "/") {
		p.fail("KAFSCALE_OPERATOR_BROKER_BINARY=%q: must be an absolute path in the broker image", c.BrokerBinary)
	}
	c.LeaderEtcdEndpoints = p.urls("KAFSCALE_OPERATOR_LEADER_ETCD_ENDPOINTS")
	if len(c.LeaderEtcdEndpoints) == 0 {
		c.LeaderEtcdEndpoints = c.EtcdEndpoints
	}
	// Without etcd for the lock the replicas elect through a Kubernetes Lease named after the
	// leader key (managed etcd is made by the leader, so it cannot hold the lock that elects it).
	c.LeaderKey = p.str("KAFSCALE_OPERATOR_LEADER_KEY", "/kafscale/"+c.Namespace+"/operator-leader")
	if c.LeaderKey == "" || !strings.HasPrefix(c.LeaderKey, "/") {
		p.fail("KAFSCALE_OPERATOR_LEADER_KEY=%q: must be an etcd key starting with /", c.LeaderKey)
	}
	if err := p.Err("operator"); err != nil {
		return nil, err
	}
	return c, nil
}

// parser is the shared environment parser (internal/env) under the helper names Parse uses.
type parser struct{ *envparse.Parser }

func (p parser) str(name, def string) string { return p.Str(name, def) }
func (p parser) required(name string) string { return p.Required(name) }
func (p parser) int(name string, def, minimum, maximum int64) int64 {
	return p.Int(name, def, minimum, maximum)
}
func (p parser) oneOf(name, def string, allowed ...string) string {
	return p.OneOf(name, def, allowed...)
}
func (p parser) list(name string) []string       { return p.OptionalList(name) }
func (p parser) urls(name string) []string       { return p.URLs(name) }
func (p parser) fail(format string, args ...any) { p.Fail(format, args...) }

// Names returns every variable Parse reads, sorted.
func Names() []string {
	return envparse.Names(func(lookup func(string) (string, bool)) { _, _ = Parse(lookup) })
}

// bool reads a switch: 1/true/yes/on or 0/false/no/off (the guide writes 1); unset is false.
func (p parser) bool(name string) bool { return p.Bool(name, false) }

// validBucket reports whether b is a valid S3 bucket name.
func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for i, r := range b {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || (r == '.' || r == '-') && i > 0 && i < len(b)-1
		if !ok {
			return false
		}
	}
	return true
}

// Unknown returns the KAFSCALE_OPERATOR_* variables in environ that the operator does not
// read (most likely typos), sorted.
func Unknown(environ []string) []string {
	return envparse.Unknown(environ, Names(), func(name string) bool { return strings.HasPrefix(name, "KAFSCALE_OPERATOR_") })
}
