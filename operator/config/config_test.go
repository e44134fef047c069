package config

import (
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseChartEnvironment(t *testing.T) {
	c, err := Parse(env(map[string]string{
		"KAFSCALE_OPERATOR_NAMESPACE":                            "kafscale",
		"KAFSCALE_OPERATOR_POD_NAME":                             "kafscale-operator-abc",
		"KAFSCALE_OPERATOR_LEADER_KEY":                           "/kafscale/prod/operator-leader",
		"KAFSCALE_OPERATOR_ETCD_ENDPOINTS":                       "http://etcd-0:2379, http://etcd-1:2379",
		"KAFSCALE_OPERATOR_BROKER_IMAGE":                         "ghcr.io/kafscale/broker:0.1.0",
		"KAFSCALE_OPERATOR_BROKER_IMAGE_PULL_POLICY":             "Always",
		"KAFSCALE_OPERATOR_BROKER_ENV_CONFIGMAP":                 "kafscale-broker-env",
		"KAFSCALE_OPERATOR_IMAGE_PULL_SECRETS":                   "a,b",
		"KAFSCALE_OPERATOR_METRICS_ADDR":                         ":8080",
		"KAFSCALE_OPERATOR_HEALTH_ADDR":                          ":8081",
		"KAFSCALE_OPERATOR_LEADER_TTL_SEC":                       "3",
		"KAFSCALE_OPERATOR_ETCD_SNAPSHOT_PREFIX":                 "/snaps/",
		"KAFSCALE_OPERATOR_ETCD_SNAPSHOT_PREFLIGHT_INTERVAL_SEC": "60",
	}))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"namespace", c.Namespace, "kafscale"},
		{"pod", c.PodName, "kafscale-operator-abc"},
		{"leader key", c.LeaderKey, "/kafscale/prod/operator-leader"},
		{"leader ttl", c.LeaderTTL, 3 * time.Second},
		{"etcd", strings.Join(c.EtcdEndpoints, "|"), "http://etcd-0:2379|http://etcd-1:2379"},
		{"leader etcd", strings.Join(c.LeaderEtcdEndpoints, "|"), "http://etcd-0:2379|http://etcd-1:2379"},
		{"image", c.BrokerImage, "ghcr.io/kafscale/broker:0.1.0"},
		{"pull policy", string(c.BrokerImagePullPolicy), "Always"},
		{"configmap", c.BrokerEnvConfigMap, "kafscale-broker-env"},
		{"pull secrets", strings.Join(c.ImagePullSecrets, "|"), "a|b"},
		{"metrics", c.MetricsAddr, ":8080"},
		{"health", c.HealthAddr, ":8081"},
		{"snapshot prefix", c.SnapshotPrefix, "snaps"},
		{"preflight", c.SnapshotPreflightEvery, time.Minute},
	}
	for _, tc := range checks {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestParseDefaults(t *testing.T) {
	c, err := Parse(env(map[string]string{
		"KAFSCALE_OPERATOR_NAMESPACE":             "ns",
		"KAFSCALE_OPERATOR_BROKER_IMAGE":          "broker:1",
		"KAFSCALE_OPERATOR_LEADER_ETCD_ENDPOINTS": "http://lock:2379",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.LeaderKey != "/kafscale/ns/operator-leader" || c.LeaderTTL != 5*time.Second || c.EtcdEndpoints != nil || c.LeaderEtcdEndpoints[0] != "http://lock:2379" ||
		c.BrokerImagePullPolicy != "IfNotPresent" || c.MetricsAddr != ":8080" || c.HealthAddr != ":8081" ||
		c.SnapshotPrefix != "etcd-snapshots" || c.EtcdImage != DefaultEtcdImage || c.SnapshotSchedule != "0 * * * *" || c.OperatorImage != "" || c.SnapshotPreflightEvery != 5*time.Minute ||
		c.BrokerBinary != "/kafscale-broker" || c.BrokerDrainWait != 25*time.Second || c.BrokerDrainTimeout != 30*time.Second ||
		c.EtcdStorageSize.String() != "10Gi" || c.EtcdStorageClass != "" ||
		c.SnapshotBucket != "" || c.SnapshotS3Endpoint != "" || c.SnapshotStaleAfter != 2*time.Hour ||
		c.SnapshotCreateBucket || c.SnapshotProtectBucket || c.SnapshotSkipPreflight {
		t.Errorf("defaults: %+v", c)
	}
	// The guide's snapshot settings, switches written as the guide does (1).
	c, err = Parse(env(map[string]string{
		"KAFSCALE_OPERATOR_NAMESPACE":                     "ns",
		"KAFSCALE_OPERATOR_BROKER_IMAGE":                  "broker:1",
		"KAFSCALE_OPERATOR_ETCD_SNAPSHOT_BUCKET":          "etcd-backups.prod",
		"KAFSCALE_OPERATOR_ETCD_SNAPSHOT_S3_ENDPOINT":     "http://minio:9000",
		"KAFSCALE_OPERATOR_ETCD_SNAPSHOT_STALE_AFTER_SEC": "900",
		"KAFSCALE_OPERATOR_ETCD_SNAPSHOT_CREATE_BUCKET":   "1",
		"KAFSCALE_OPERATOR_ETCD_SNAPSHOT_PROTECT_BUCKET":  "true",
		"KAFSCALE_OPERATOR_ETCD_SNAPSHOT_SKIP_PREFLIGHT":  "1",
	}))
	if err != nil || c.SnapshotBucket != "etcd-backups.prod" || c.SnapshotS3Endpoint != "http://minio:9000" || c.SnapshotStaleAfter != 15*time.Minute ||
		!c.SnapshotCreateBucket || !c.SnapshotProtectBucket || !c.SnapshotSkipPreflight {
		t.Errorf("snapshot settings: %v %+v", err, c)
	}
	c, err = Parse(env(map[string]string{
		"KAFSCALE_OPERATOR_NAMESPACE":          "ns",
		"KAFSCALE_OPERATOR_BROKER_IMAGE":       "broker:1",
		"KAFSCALE_OPERATOR_ETCD_STORAGE_SIZE":  "25Gi",
		"KAFSCALE_OPERATOR_ETCD_STORAGE_CLASS": "ssd",
	}))
	if err != nil || c.EtcdStorageSize.String() != "25Gi" || c.EtcdStorageClass != "ssd" || len(c.Moot) != 0 {
		t.Errorf("etcd storage: %v %+v", err, c)
	}
	// The guide's snapshot images are accepted and reported as doing nothing here.
	c, err = Parse(env(map[string]string{
		"KAFSCALE_OPERATOR_NAMESPACE":                   "ns",
		"KAFSCALE_OPERATOR_BROKER_IMAGE":                "broker:1",
		"KAFSCALE_OPERATOR_ETCD_SNAPSHOT_ETCDCTL_IMAGE": "kubesphere/etcd:3.6.4-0",
		"KAFSCALE_OPERATOR_ETCD_SNAPSHOT_IMAGE":         "amazon/aws-cli:2.15.0",
	}))
	if err != nil || len(c.Moot) != 2 || !strings.Contains(c.Moot[0], "KAFSCALE_OPERATOR_ETCD_SNAPSHOT_ETCDCTL_IMAGE=kubesphere/etcd:3.6.4-0 is ignored") ||
		!strings.Contains(c.Moot[1], "KAFSCALE_OPERATOR_ETCD_SNAPSHOT_IMAGE=amazon/aws-cli:2.15.0 is ignored") {
		t.Errorf("snapshot images: %v %q", err, c.Moot)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"missing required", map[string]string{}, []string{"KAFSCALE_OPERATOR_NAMESPACE is required", "KAFSCALE_OPERATOR_BROKER_IMAGE is required"}},
		{"bad values", map[string]string{
			"KAFSCALE_OPERATOR_NAMESPACE":                "ns",
			"KAFSCALE_OPERATOR_BROKER_IMAGE":             "b",
			"KAFSCALE_OPERATOR_ETCD_ENDPOINTS":           "etcd:2379",
			"KAFSCALE_OPERATOR_BROKER_IMAGE_PULL_POLICY": "Sometimes",
			"KAFSCALE_OPERATOR_LEADER_TTL_SEC":           "0",
			"KAFSCALE_OPERATOR_LEADER_KEY":               "no-slash",
			"KAFSCALE_OPERATOR_BROKER_BINARY":            "kafscale-broker",
			"KAFSCALE_OPERATOR_BROKER_DRAIN_WAIT_SEC":    "60",
			"KAFSCALE_OPERATOR_BROKER_DRAIN_TIMEOUT_SEC": "0",
			"KAFSCALE_OPERATOR_ETCD_STORAGE_SIZE":        "ten gigs",
		}, []string{"KAFSCALE_OPERATOR_ETCD_STORAGE_SIZE", "etcd:2379", "Sometimes", "KAFSCALE_OPERATOR_LEADER_TTL_SEC", "no-slash", "KAFSCALE_OPERATOR_BROKER_BINARY", "KAFSCALE_OPERATOR_BROKER_DRAIN_WAIT_SEC", "KAFSCALE_OPERATOR_BROKER_DRAIN_TIMEOUT_SEC"}},
	}
	cases = append(cases, struct {
		name string
		env  map[string]string
		want []string
	}{"bad snapshot settings", map[string]string{
		"KAFSCALE_OPERATOR_NAMESPACE":                     "ns",
		"KAFSCALE_OPERATOR_BROKER_IMAGE":                  "b",
		"KAFSCALE_OPERATOR_ETCD_SNAPSHOT_BUCKET":          "Etcd_Backups",
		"KAFSCALE_OPERATOR_ETCD_SNAPSHOT_S3_ENDPOINT":     "minio:9000",
		"KAFSCALE_OPERATOR_ETCD_SNAPSHOT_STALE_AFTER_SEC": "two hours",
		"KAFSCALE_OPERATOR_ETCD_SNAPSHOT_CREATE_BUCKET":   "maybe",
		"KAFSCALE_OPERATOR_ETCD_SNAPSHOT_PROTECT_BUCKET":  "2",
		"KAFSCALE_OPERATOR_ETCD_SNAPSHOT_SKIP_PREFLIGHT":  "y",
	}, []string{"KAFSCALE_OPERATOR_ETCD_SNAPSHOT_BUCKET", "KAFSCALE_OPERATOR_ETCD_SNAPSHOT_S3_ENDPOINT", "KAFSCALE_OPERATOR_ETCD_SNAPSHOT_STALE_AFTER_SEC",
		"KAFSCALE_OPERATOR_ETCD_SNAPSHOT_CREATE_BUCKET", "KAFSCALE_OPERATOR_ETCD_SNAPSHOT_PROTECT_BUCKET", "KAFSCALE_OPERATOR_ETCD_SNAPSHOT_SKIP_PREFLIGHT"}})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(env(tc.env))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// The chart's default: no etcd endpoints at all. The operator starts, and elects through a
// Lease (LeaderEtcdEndpoints empty).
func TestParseWithoutEtcd(t *testing.T) {
	c, err := Parse(env(map[string]string{"KAFSCALE_OPERATOR_NAMESPACE": "ns", "KAFSCALE_OPERATOR_BROKER_IMAGE": "broker:1", "KAFSCALE_OPERATOR_LEADER_KEY": "/kafscale/operator/leader"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.EtcdEndpoints) != 0 || len(c.LeaderEtcdEndpoints) != 0 || c.LeaderKey != "/kafscale/operator/leader" {
		t.Errorf("%+v", c)
	}
}
