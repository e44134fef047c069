// Package guide_test checks the operations guide's environment variable index against the
// binaries' own configuration parsers: every variable the guide names is read.
package guide_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	brokerconfig "github.com/kafscale/kafscale/broker/config"
	consoleconfig "github.com/kafscale/kafscale/console/config"
	operatorconfig "github.com/kafscale/kafscale/operator/config"
	proxyconfig "github.com/kafscale/kafscale/proxy/config"
)

// setting is one variable of the guide's index with a value that must take effect (the
// parsed configuration differs from the one without it) and, where the variable has values
// that cannot work, one that must be refused with an error naming the variable.
type setting struct {
	name string
	good string
	bad  string            // "" when every value is accepted (free text: hosts, images)
	with map[string]string // variables the good value needs beside it (the other half of a pair)
}

// binary is a configuration parser with the least environment it accepts.
type binary struct {
	name  string
	base  map[string]string
	parse func(lookup func(string) (string, bool)) (any, error)
	// unknown is the binary's "unknown variable" check, nil when it has none.
	unknown func(environ []string) []string
}

func lookupOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func merged(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func aclFile(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "acl.json")
	doc := `{"default_policy":"deny","principals":[{"name":"analytics","allow":[{"action":"fetch","resource":"topic","name":"orders-*"}]}]}`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The guide's index, by name only, with the binary that reads each. The guide lists
// KAFSCALE_S3_NAMESPACE, KAFSCALE_SEGMENT_BYTES and KAFSCALE_FLUSH_INTERVAL_MS among the
// operator's variables; here the brokers read them (through broker.env or the
// KafscaleCluster's spec.config), so they are checked against the broker's parser.
func guideIndex(t *testing.T) map[*binary][]setting {
	broker := &binary{
		name: "broker", base: map[string]string{"KAFSCALE_S3_BUCKET": "segments"},
		parse:   func(l func(string) (string, bool)) (any, error) { return brokerconfig.Parse(l) },
		unknown: brokerconfig.Unknown,
	}
	operator := &binary{
		name: "operator", base: map[string]string{"KAFSCALE_OPERATOR_NAMESPACE": "kafscale", "KAFSCALE_OPERATOR_BROKER_IMAGE": "broker:1", "KAFSCALE_OPERATOR_POD_NAME": "op-0"},
		parse: func(l func(string) (string, bool)) (any, error) { return operatorconfig.Parse(l) },
	}
	console := &binary{
		name: "console", base: map[string]string{"KAFSCALE_CONSOLE_ETCD_ENDPOINTS": "http://etcd:2379"},
		parse: func(l func(string) (string, bool)) (any, error) { return consoleconfig.Parse(l) },
	}
	proxy := &binary{
		name: "proxy", base: map[string]string{"KAFSCALE_PROXY_ETCD_ENDPOINTS": "http://etcd:2379"},
		parse:   func(l func(string) (string, bool)) (any, error) { return proxyconfig.Parse(l) },
		unknown: proxyconfig.Unknown,
	}
	return map[*binary][]setting{
		operator: {
			{name: "KAFSCALE_OPERATOR_ETCD_ENDPOINTS", good: "http://etcd-0:2379", bad: "etcd-0:2379"},
			{name: "KAFSCALE_OPERATOR_ETCD_IMAGE", good: "registry.local/etcd:v3.6.16"},
			{name: "KAFSCALE_OPERATOR_ETCD_STORAGE_SIZE", good: "20Gi", bad: "ten gigs"},
			{name: "KAFSCALE_OPERATOR_ETCD_STORAGE_CLASS", good: "ssd"},
			{name: "KAFSCALE_OPERATOR_ETCD_SNAPSHOT_BUCKET", good: "etcd-backups", bad: "Etcd_Backups"},
			{name: "KAFSCALE_OPERATOR_ETCD_SNAPSHOT_PREFIX", good: "snaps"},
			{name: "KAFSCALE_OPERATOR_ETCD_SNAPSHOT_SCHEDULE", good: "*/30 * * * *"},
			// Moot here (one Job image does both); the effect is the startup log line.
			{name: "KAFSCALE_OPERATOR_ETCD_SNAPSHOT_ETCDCTL_IMAGE", good: "kubesphere/etcd:3.6.4-0"},
			{name: "KAFSCALE_OPERATOR_ETCD_SNAPSHOT_IMAGE", good: "amazon/aws-cli:2.15.0"},
			{name: "KAFSCALE_OPERATOR_ETCD_SNAPSHOT_S3_ENDPOINT", good: "http://minio:9000", bad: "minio:9000"},
			{name: "KAFSCALE_OPERATOR_ETCD_SNAPSHOT_STALE_AFTER_SEC", good: "3600", bad: "two hours"},
			{name: "KAFSCALE_OPERATOR_ETCD_SNAPSHOT_CREATE_BUCKET", good: "1", bad: "maybe"},
			{name: "KAFSCALE_OPERATOR_ETCD_SNAPSHOT_PROTECT_BUCKET", good: "1", bad: "maybe"},
			{name: "KAFSCALE_OPERATOR_ETCD_SNAPSHOT_SKIP_PREFLIGHT", good: "1", bad: "maybe"},
			{name: "KAFSCALE_OPERATOR_LEADER_KEY", good: "/prod/operator-leader", bad: "operator-leader"},
		},
		broker: {
			{name: "KAFSCALE_S3_NAMESPACE", good: "tenant-a"},
			{name: "KAFSCALE_SEGMENT_BYTES", good: "8388608", bad: "big"},
			{name: "KAFSCALE_FLUSH_INTERVAL_MS", good: "250", bad: "soon"},
			{name: "KAFSCALE_BROKER_ADDR", good: ":19092", bad: "19092"},
			{name: "KAFSCALE_BROKER_HOST", good: "kafka.example.com"},
			{name: "KAFSCALE_BROKER_PORT", good: "19092", bad: "0"},
			{name: "KAFSCALE_BROKER_ID", good: "7", bad: "seven"},
			{name: "KAFSCALE_METRICS_ADDR", good: ":19093"},
			{name: "KAFSCALE_CONTROL_ADDR", good: ":19094"},
			{name: "KAFSCALE_ETCD_ENDPOINTS", good: "http://etcd-0:2379"},
			{name: "KAFSCALE_ETCD_USERNAME", good: "kafscale", with: map[string]string{"KAFSCALE_ETCD_PASSWORD": "pw"}},
			{name: "KAFSCALE_ETCD_PASSWORD", good: "pw", with: map[string]string{"KAFSCALE_ETCD_USERNAME": "kafscale"}},
			{name: "KAFSCALE_S3_BUCKET", good: "other-segments"},
			{name: "KAFSCALE_S3_REGION", good: "eu-west-1"},
			{name: "KAFSCALE_S3_ENDPOINT", good: "http://minio:9000"},
			{name: "KAFSCALE_S3_READ_BUCKET", good: "segments-replica"},
			{name: "KAFSCALE_S3_READ_REGION", good: "eu-west-1", with: map[string]string{"KAFSCALE_S3_READ_BUCKET": "segments-replica"}},
			{name: "KAFSCALE_S3_READ_ENDPOINT", good: "http://replica:9000", with: map[string]string{"KAFSCALE_S3_READ_BUCKET": "segments-replica"}},
			{name: "KAFSCALE_S3_PATH_STYLE", good: "true", bad: "sometimes"},
			{name: "KAFSCALE_S3_KMS_ARN", good: "arn:aws:kms:us-east-1:111122223333:key/k"},
			{name: "KAFSCALE_S3_ACCESS_KEY", good: "AKIA", bad: "AKIA", with: map[string]string{"KAFSCALE_S3_SECRET_KEY": "s"}}, // bad: half a pair
			{name: "KAFSCALE_S3_SECRET_KEY", good: "s", bad: "s", with: map[string]string{"KAFSCALE_S3_ACCESS_KEY": "AKIA"}},
			{name: "KAFSCALE_S3_SESSION_TOKEN", good: "token", with: map[string]string{"KAFSCALE_S3_ACCESS_KEY": "AKIA", "KAFSCALE_S3_SECRET_KEY": "s"}},
			{name: "KAFSCALE_CACHE_BYTES", good: "1073741824", bad: "lots"},
			{name: "KAFSCALE_READAHEAD_SEGMENTS", good: "4", bad: "-1"},
			{name: "KAFSCALE_AUTO_CREATE_TOPICS", good: "false", bad: "sometimes"},
			{name: "KAFSCALE_AUTO_CREATE_PARTITIONS", good: "6", bad: "0"},
			{name: "KAFSCALE_USE_MEMORY_S3", good: "true", bad: "sometimes"},
			{name: "KAFSCALE_LOG_LEVEL", good: "debug", bad: "verbose"},
			{name: "KAFSCALE_TRACE_KAFKA", good: "true", bad: "sometimes"},
			{name: "KAFSCALE_THROUGHPUT_WINDOW_SEC", good: "30", bad: "half a minute"},
			{name: "KAFSCALE_S3_HEALTH_WINDOW_SEC", good: "120", bad: "x"},
			{name: "KAFSCALE_S3_LATENCY_WARN_MS", good: "400", bad: "x"},
			{name: "KAFSCALE_S3_LATENCY_CRIT_MS", good: "4000", bad: "x"},
			{name: "KAFSCALE_S3_ERROR_RATE_WARN", good: "0.1", bad: "x"},
			{name: "KAFSCALE_S3_ERROR_RATE_CRIT", good: "0.5", bad: "x"},
			{name: "KAFSCALE_STARTUP_TIMEOUT_SEC", good: "60", bad: "x"},
			// v1.5's security and durability settings.
			{name: "KAFSCALE_ACL_ENABLED", good: "true", bad: "sometimes"},
			{name: "KAFSCALE_ACL_JSON", good: `{"default_policy":"allow"}`},
			{name: "KAFSCALE_ACL_FILE", good: aclFile(t)},
			{name: "KAFSCALE_ACL_FAIL_OPEN", good: "true", bad: "sometimes"},
			{name: "KAFSCALE_PRINCIPAL_SOURCE", good: "remote_addr", bad: "sasl"},
			{name: "KAFSCALE_PROXY_PROTOCOL", good: "true", bad: "sometimes"},
			{name: "KAFSCALE_ALLOW_ADMIN_APIS", good: "false", bad: "sometimes"},
			{name: "KAFSCALE_PRODUCE_SYNC_FLUSH", good: "false", bad: "sometimes"},
		},
		console: {
			{name: "KAFSCALE_CONSOLE_HTTP_ADDR", good: ":9090", bad: "9090"},
			{name: "KAFSCALE_CONSOLE_ETCD_ENDPOINTS", good: "http://etcd-0:2379,http://etcd-1:2379"},
			{name: "KAFSCALE_CONSOLE_ETCD_USERNAME", good: "console"},
			{name: "KAFSCALE_CONSOLE_ETCD_PASSWORD", good: "pw"},
			{name: "KAFSCALE_CONSOLE_BROKER_METRICS_URL", good: "http://{host}:9093/metrics", bad: "not a url"},
			{name: "KAFSCALE_UI_USERNAME", good: "admin", bad: "admin", with: map[string]string{"KAFSCALE_UI_PASSWORD": "pw"}}, // bad: without a password
			{name: "KAFSCALE_UI_PASSWORD", good: "pw", bad: "pw", with: map[string]string{"KAFSCALE_UI_USERNAME": "admin"}},
		},
		proxy: {
			{name: "KAFSCALE_PROXY_ETCD_ENDPOINTS", good: "http://etcd-0:2379"},
			{name: "KAFSCALE_PROXY_ADVERTISED_HOST", good: "kafka.example.com"},
			{name: "KAFSCALE_PROXY_ADVERTISED_PORT", good: "19092", bad: "0"},
		},
	}
}

// TestGuideEnvironmentIndex: for each variable of the guide's index, its value changes the
// binary's parsed configuration, a value that cannot work is refused naming the variable,
// and the binary's unknown-variable check (broker, proxy) does not flag it.
func TestGuideEnvironmentIndex(t *testing.T) {
	for bin, settings := range guideIndex(t) {
		base, err := bin.parse(lookupOf(bin.base))
		if err != nil {
			t.Fatalf("%s: the base environment %v is refused: %v", bin.name, bin.base, err)
		}
		again, _ := bin.parse(lookupOf(bin.base))
		if !reflect.DeepEqual(base, again) {
			t.Fatalf("%s: two parses of one environment differ, so a difference proves nothing", bin.name)
		}
		for _, s := range settings {
			t.Run(bin.name+"/"+s.name, func(t *testing.T) {
				// The partner variables alone, so the difference is this variable's.
				// The partner variables alone, so the difference is this variable's; half a
				// pair may be refused, and the base is the reference then.
				ref := base
				if len(s.with) > 0 {
					if r, err := bin.parse(lookupOf(merged(bin.base, s.with))); err == nil {
						ref = r
					}
				}
				got, err := bin.parse(lookupOf(merged(bin.base, s.with, map[string]string{s.name: s.good})))
				if err != nil {
					t.Fatalf("%s=%q refused: %v", s.name, s.good, err)
				}
				if reflect.DeepEqual(got, ref) {
					t.Errorf("%s=%q changed nothing in the %s's configuration: not read", s.name, s.good, bin.name)
				}
				if s.bad != "" {
					// A bad value equal to the good one means: half a pair, without its partner.
					env := merged(bin.base, map[string]string{s.name: s.bad})
					if s.bad != s.good {
						env = merged(bin.base, s.with, env)
					}
					_, err := bin.parse(lookupOf(env))
					if err == nil || !strings.Contains(err.Error(), s.name) {
						t.Errorf("%s=%q: error %v, want a refusal naming %s", s.name, s.bad, err, s.name)
					}
				}
				if bin.unknown != nil {
					if u := bin.unknown([]string{s.name + "=" + s.good}); len(u) > 0 {
						t.Errorf("the %s warns that %s is an unknown variable", bin.name, s.name)
					}
				}
			})
		}
	}
}
