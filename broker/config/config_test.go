package config

import (
	"log/slog"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kafscale/kafscale/internal/env"
	"github.com/kafscale/kafscale/internal/env/envdoc"
)

func TestDefaults(t *testing.T) {
	c, err := Parse(env.Map(map[string]string{"KAFSCALE_S3_BUCKET": "b", "KAFSCALE_BROKER_ADDR": "127.0.0.1:9092"}))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"NodeID", c.NodeID, int32(0)},
		{"AdvertisedHost", c.AdvertisedHost, "127.0.0.1"},
		{"AdvertisedPort", c.AdvertisedPort, int32(9092)},
		{"MetricsAddr", c.MetricsAddr, ":9093"},
		{"MaxRequestBytes", c.MaxRequestBytes, int32(100 << 20)},
		{"AutoCreateTopics", c.AutoCreateTopics, true},
		{"AutoCreatePartitions", c.AutoCreatePartitions, int32(1)},
		{"ProduceSyncFlush", c.ProduceSyncFlush, true},
		{"StartupTimeout", c.StartupTimeout, 30 * time.Second},
		{"Etcd.Endpoints", strings.Join(c.Etcd.Endpoints, ","), "http://127.0.0.1:2379"},
		{"S3.Region", c.S3.Region, "us-east-1"},
		{"Storage.SegmentBytes", c.Storage.SegmentBytes, 4 << 20},
		{"Storage.FlushInterval", c.Storage.FlushInterval, 500 * time.Millisecond},
		{"Storage.CacheBytes", c.Storage.CacheBytes, int64(256 << 20)},
		{"Storage.ReadaheadSegments", c.Storage.ReadaheadSegments, 2},
		{"Storage.RetentionCheck", c.Storage.RetentionCheck, time.Minute},
		{"Storage.SweepGrace", c.Storage.SweepGrace, 10 * time.Minute},
		{"Storage.ProducerIDExpiration", c.Storage.ProducerIDExpiration, 24 * time.Hour},
		{"LogLevel", c.LogLevel, slog.LevelInfo},
		{"Groups.MinSessionTimeout", c.Groups.MinSessionTimeout, 6 * time.Second},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestOverrides(t *testing.T) {
	c, err := Parse(env.Map(map[string]string{
		"KAFSCALE_S3_BUCKET":              "b",
		"KAFSCALE_BROKER_ID":              "7",
		"KAFSCALE_BROKER_ADDR":            ":19092",
		"KAFSCALE_BROKER_HOST":            "broker-7.example",
		"KAFSCALE_ETCD_ENDPOINTS":         "http://a:2379, http://b:2379",
		"KAFSCALE_PRODUCE_SYNC_FLUSH":     "false",
		"KAFSCALE_AUTO_CREATE_PARTITIONS": "6",
		"KAFSCALE_LOG_LEVEL":              "DEBUG",
		"KAFSCALE_S3_ERROR_RATE_WARN":     "0.1",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeID != 7 || c.AdvertisedHost != "broker-7.example" || c.AdvertisedPort != 19092 ||
		len(c.Etcd.Endpoints) != 2 || c.Etcd.Endpoints[1] != "http://b:2379" || c.ProduceSyncFlush ||
		c.AutoCreatePartitions != 6 || c.LogLevel != slog.LevelDebug || c.S3.ErrorRateWarn != 0.1 {
		t.Fatalf("%+v", c)
	}
}

func TestControlSettings(t *testing.T) {
	c, err := Parse(env.Map(map[string]string{"KAFSCALE_S3_BUCKET": "b"}))
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if c.ControlAddr != "" || c.PodName != host {
		t.Errorf("defaults: control %q pod %q, want no control service and the host name %q", c.ControlAddr, c.PodName, host)
	}
	c, err = Parse(env.Map(map[string]string{"KAFSCALE_S3_BUCKET": "b", "KAFSCALE_CONTROL_ADDR": ":9094", "KAFSCALE_POD_NAME": "broker-abc"}))
	if err != nil || c.ControlAddr != ":9094" || c.PodName != "broker-abc" {
		t.Errorf("set: %+v %v", c, err)
	}
}

func TestAutoNodeID(t *testing.T) {
	for _, v := range []string{"auto", "AUTO", " auto "} {
		c, err := Parse(env.Map(map[string]string{"KAFSCALE_S3_BUCKET": "b", "KAFSCALE_BROKER_ID": v}))
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if !c.AutoNodeID || c.NodeID != 0 {
			t.Errorf("%q: AutoNodeID=%v NodeID=%d, want true, 0", v, c.AutoNodeID, c.NodeID)
		}
	}
	c, err := Parse(env.Map(map[string]string{"KAFSCALE_S3_BUCKET": "b", "KAFSCALE_BROKER_ID": "3"}))
	if err != nil || c.AutoNodeID || c.NodeID != 3 {
		t.Fatalf("explicit id: %+v, %v", c, err)
	}
	if _, err := Parse(env.Map(map[string]string{"KAFSCALE_S3_BUCKET": "b", "KAFSCALE_BROKER_ID": "automatic"})); err == nil ||
		!strings.Contains(err.Error(), "KAFSCALE_BROKER_ID") {
		t.Fatalf("KAFSCALE_BROKER_ID=automatic: %v", err)
	}
}

func TestBadValuesAreAllReportedByName(t *testing.T) {
	_, err := Parse(env.Map(map[string]string{
		"KAFSCALE_BROKER_ID":              "-1",
		"KAFSCALE_BROKER_ADDR":            "nonsense",
		"KAFSCALE_AUTO_CREATE_TOPICS":     "maybe",
		"KAFSCALE_MAX_REQUEST_BYTES":      "100MB",
		"KAFSCALE_S3_ERROR_RATE_CRIT":     "2",
		"KAFSCALE_S3_ENDPOINT":            "minio:9000",
		"KAFSCALE_LOG_LEVEL":              "loud",
		"KAFSCALE_S3_ACCESS_KEY":          "only-half",
		"KAFSCALE_CLUSTER_NAME":           "a/b",
		"KAFSCALE_STARTUP_TIMEOUT_SEC":    "0",
		"KAFSCALE_AUTO_CREATE_PARTITIONS": "0",
		"KAFSCALE_CONTROL_ADDR":           "9094",
	}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, name := range []string{"KAFSCALE_BROKER_ID", "KAFSCALE_BROKER_ADDR", "KAFSCALE_AUTO_CREATE_TOPICS",
		"KAFSCALE_MAX_REQUEST_BYTES", "KAFSCALE_S3_ERROR_RATE_CRIT", "KAFSCALE_S3_ENDPOINT", "KAFSCALE_LOG_LEVEL",
		"KAFSCALE_S3_ACCESS_KEY", "KAFSCALE_CLUSTER_NAME", "KAFSCALE_STARTUP_TIMEOUT_SEC",
		"KAFSCALE_AUTO_CREATE_PARTITIONS", "KAFSCALE_CONTROL_ADDR", "KAFSCALE_S3_BUCKET is required"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
}

func TestUnknownFlagsTypos(t *testing.T) {
	got := Unknown([]string{"KAFSCALE_S3_BUCKET=b", "KAFSCALE_S3_BUKET=b", "KAFSCALE_OPERATOR_X=1", "HOME=/root"})
	if len(got) != 1 || got[0] != "KAFSCALE_S3_BUKET" {
		t.Fatalf("%v", got)
	}
}

// Every variable the broker reads is documented in docs/runtime-settings.md, and every
// KAFSCALE_* variable of the broker sections there ("## Broker…" and the chart's
// "### Brokers (through the operator)") is read, whatever its prefix: KAFSCALE_PROXY_PROTOCOL
// is the broker's even though KAFSCALE_PROXY_* are otherwise the proxy's.
func TestRuntimeSettingsDocumentsEveryVariable(t *testing.T) {
	doc, err := os.ReadFile("../../docs/runtime-settings.md")
	if err != nil {
		t.Fatal(err)
	}
	// name -> documented in a broker section (the first column of a table row names it)
	documented := envdoc.Variables(string(doc), func(h string) bool {
		return strings.HasPrefix(h, "## Broker") || strings.HasPrefix(h, "### Brokers")
	}, regexp.MustCompile("`(KAFSCALE_[A-Z0-9_]+)`"), "| `KAFSCALE_")
	for _, name := range Names() {
		if _, ok := documented[name]; !ok {
			t.Errorf("%s is read but not documented in docs/runtime-settings.md", name)
		}
	}
	// Other sections belong to other binaries (operator, proxy, console, snapshot jobs).
	for name, broker := range documented {
		if broker && !slices.Contains(Names(), name) {
			t.Errorf("%s is documented but the broker does not read it", name)
		}
	}
}

func TestSecuritySettings(t *testing.T) {
	c, err := Parse(env.Map(map[string]string{"KAFSCALE_S3_BUCKET": "b"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.ACLEnabled || c.ACL != nil || c.PrincipalSource != PrincipalClientID || c.ProxyProtocol {
		t.Fatalf("defaults: %+v", c)
	}
	c, err = Parse(env.Map(map[string]string{
		"KAFSCALE_S3_BUCKET":        "b",
		"KAFSCALE_ACL_ENABLED":      "true",
		"KAFSCALE_ACL_CONFIG_JSON":  `{"rules":[{"principal":"User:10.0.0.0/8","operations":["Write"],"resource":{"type":"topic","name":"t"}}]}`,
		"KAFSCALE_PRINCIPAL_SOURCE": "proxy_addr",
		"KAFSCALE_PROXY_PROTOCOL":   "true",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !c.ACLEnabled || len(c.ACL) != 1 || c.PrincipalSource != PrincipalProxyAddr || !c.ProxyProtocol {
		t.Fatalf("%+v", c)
	}

	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"bad enabled", map[string]string{"KAFSCALE_ACL_ENABLED": "sometimes"}, "KAFSCALE_ACL_ENABLED"},
		{"bad source", map[string]string{"KAFSCALE_PRINCIPAL_SOURCE": "cert"}, "KAFSCALE_PRINCIPAL_SOURCE=\"cert\""},
		{"proxy_addr without proxy protocol", map[string]string{"KAFSCALE_PRINCIPAL_SOURCE": "proxy_addr"}, "needs KAFSCALE_PROXY_PROTOCOL=true"},
		{"bad proxy protocol", map[string]string{"KAFSCALE_PROXY_PROTOCOL": "v2"}, "KAFSCALE_PROXY_PROTOCOL"},
	}
	for _, tc := range cases {
		tc.env["KAFSCALE_S3_BUCKET"] = "b"
		if _, err := Parse(env.Map(tc.env)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
	if got := Unknown([]string{"KAFSCALE_PROXY_PROTOCOL=true", "KAFSCALE_PROXY_PROTOCOLL=true"}); len(got) != 0 {
		// KAFSCALE_PROXY_* other than the broker's own are the proxy's, not typos.
		t.Fatalf("%v", got)
	}
}

// The ACL document comes from KAFSCALE_ACL_JSON, KAFSCALE_ACL_CONFIG_JSON or KAFSCALE_ACL_FILE;
// two different documents stop the broker naming both variables, and an unusable document is
// an ACLProblem naming its variable (the broker then fails closed or open), not a stop.
func TestACLDocumentSources(t *testing.T) {
	doc := `{"rules":[{"principal":"User:a","operations":["Read"],"resource":{"type":"topic","name":"t"}}]}`
	other := `{"rules":[{"principal":"User:b","operations":["Read"],"resource":{"type":"topic","name":"t"}}]}`
	file := t.TempDir() + "/acl.json"
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := []struct {
		name   string
		env    map[string]string
		source string
	}{
		{"guide name", map[string]string{"KAFSCALE_ACL_JSON": doc}, "KAFSCALE_ACL_JSON"},
		{"older name", map[string]string{"KAFSCALE_ACL_CONFIG_JSON": doc}, "KAFSCALE_ACL_CONFIG_JSON"},
		{"both names, same document", map[string]string{"KAFSCALE_ACL_JSON": doc, "KAFSCALE_ACL_CONFIG_JSON": doc}, "KAFSCALE_ACL_JSON"},
		{"file", map[string]string{"KAFSCALE_ACL_FILE": file}, "KAFSCALE_ACL_FILE=" + file},
	}
	for _, tc := range ok {
		tc.env["KAFSCALE_S3_BUCKET"] = "b"
		c, err := Parse(env.Map(tc.env))
		if err != nil || c.ACLProblem != nil || len(c.ACL) != 1 || c.ACLSource != tc.source {
			t.Errorf("%s: err %v, problem %v, %d rules from %q; want 1 rule from %q", tc.name, err, c.ACLProblem, len(c.ACL), c.ACLSource, tc.source)
		}
	}

	refused := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"two inline documents", map[string]string{"KAFSCALE_ACL_JSON": doc, "KAFSCALE_ACL_CONFIG_JSON": other}, []string{"KAFSCALE_ACL_JSON and KAFSCALE_ACL_CONFIG_JSON"}},
		{"inline and file", map[string]string{"KAFSCALE_ACL_JSON": doc, "KAFSCALE_ACL_FILE": file}, []string{"KAFSCALE_ACL_JSON and KAFSCALE_ACL_FILE"}},
		{"bad fail-open", map[string]string{"KAFSCALE_ACL_FAIL_OPEN": "perhaps"}, []string{`KAFSCALE_ACL_FAIL_OPEN="perhaps"`}},
	}
	for _, tc := range refused {
		tc.env["KAFSCALE_S3_BUCKET"] = "b"
		_, err := Parse(env.Map(tc.env))
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: err %v, want it to name %q", tc.name, err, w)
			}
		}
	}

	unusable := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"bad rule", map[string]string{"KAFSCALE_ACL_CONFIG_JSON": `{"rules":[{"principal":"bob","operations":["Read"],"resource":{"type":"topic","name":"t"}}]}`},
			`KAFSCALE_ACL_CONFIG_JSON: rule 0 (principal "bob")`},
		{"not json", map[string]string{"KAFSCALE_ACL_JSON": `rules`}, "KAFSCALE_ACL_JSON: not a valid ACL document"},
		{"missing file", map[string]string{"KAFSCALE_ACL_FILE": file + ".gone"}, "KAFSCALE_ACL_FILE: read the ACL document"},
	}
	for _, tc := range unusable {
		tc.env["KAFSCALE_S3_BUCKET"] = "b"
		tc.env["KAFSCALE_ACL_ENABLED"] = "true"
		c, err := Parse(env.Map(tc.env))
		if err != nil {
			t.Errorf("%s: stopped the broker (%v); want it to start and fail closed", tc.name, err)
			continue
		}
		if c.ACLProblem == nil || !strings.Contains(c.ACLProblem.Error(), tc.want) || c.ACL != nil || c.ACLFailOpen {
			t.Errorf("%s: problem %v, rules %v, fail-open %v; want a problem naming %q, no rules, fail closed", tc.name, c.ACLProblem, c.ACL, c.ACLFailOpen, tc.want)
		}
	}
	c, err := Parse(env.Map(map[string]string{"KAFSCALE_S3_BUCKET": "b", "KAFSCALE_ACL_FAIL_OPEN": "true"}))
	if err != nil || !c.ACLFailOpen {
		t.Errorf("KAFSCALE_ACL_FAIL_OPEN=true: %v, %+v", err, c)
	}
}

// KAFSCALE_S3_KMS_ARN (the guide's name) and KAFSCALE_S3_KMS_KEY_ID set the same key;
// both naming different keys stop the broker.
func TestKMSKeyNames(t *testing.T) {
	const arn = "arn:aws:kms:us-east-1:111122223333:key/abcd"
	for _, name := range []string{"KAFSCALE_S3_KMS_ARN", "KAFSCALE_S3_KMS_KEY_ID"} {
		c, err := Parse(env.Map(map[string]string{"KAFSCALE_S3_BUCKET": "b", name: arn}))
		if err != nil || c.S3.KMSKeyID != arn {
			t.Errorf("%s: %v, key %q", name, err, c.S3.KMSKeyID)
		}
	}
	c, err := Parse(env.Map(map[string]string{"KAFSCALE_S3_BUCKET": "b", "KAFSCALE_S3_KMS_ARN": arn, "KAFSCALE_S3_KMS_KEY_ID": arn}))
	if err != nil || c.S3.KMSKeyID != arn {
		t.Errorf("both, same key: %v, key %q", err, c.S3.KMSKeyID)
	}
	_, err = Parse(env.Map(map[string]string{"KAFSCALE_S3_BUCKET": "b", "KAFSCALE_S3_KMS_ARN": arn, "KAFSCALE_S3_KMS_KEY_ID": "other"}))
	if err == nil || !strings.Contains(err.Error(), "KAFSCALE_S3_KMS_ARN") || !strings.Contains(err.Error(), "KAFSCALE_S3_KMS_KEY_ID") {
		t.Errorf("different keys: %v, want an error naming both variables", err)
	}
}

func TestDevelopmentSettings(t *testing.T) {
	c, err := Parse(env.Map(map[string]string{"KAFSCALE_S3_BUCKET": "b"}))
	if err != nil || c.TraceKafka || c.ThroughputWindow != time.Minute || c.S3.UseMemory {
		t.Fatalf("defaults: %v %+v", err, c)
	}
	// The in-memory store needs no bucket: it makes whichever it is given.
	c, err = Parse(env.Map(map[string]string{"KAFSCALE_USE_MEMORY_S3": "true", "KAFSCALE_TRACE_KAFKA": "1", "KAFSCALE_THROUGHPUT_WINDOW_SEC": "10"}))
	if err != nil || !c.TraceKafka || c.ThroughputWindow != 10*time.Second || !c.S3.UseMemory || c.S3.Bucket != "kafscale" {
		t.Fatalf("set: %v %+v", err, c)
	}
	for name, bad := range map[string][]string{
		"KAFSCALE_TRACE_KAFKA":           {"verbose"},
		"KAFSCALE_THROUGHPUT_WINDOW_SEC": {"0", "3601", "1m"},
		"KAFSCALE_USE_MEMORY_S3":         {"ram"},
	} {
		for _, v := range bad {
			_, err := Parse(env.Map(map[string]string{"KAFSCALE_S3_BUCKET": "b", name: v}))
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("%s=%q: %v, want an error naming it", name, v, err)
			}
		}
	}
}

// The broker variables of the operations guide's index, copied from the guide by name only:
// each is read (so none draws an "unknown variable" warning).
func TestGuideBrokerVariablesAreRead(t *testing.T) {
	guide := []string{
		"KAFSCALE_ACL_ENABLED", "KAFSCALE_ACL_JSON", "KAFSCALE_ACL_FILE", "KAFSCALE_ACL_FAIL_OPEN",
		"KAFSCALE_PRINCIPAL_SOURCE", "KAFSCALE_PROXY_PROTOCOL", "KAFSCALE_ALLOW_ADMIN_APIS",
		"KAFSCALE_ETCD_ENDPOINTS", "KAFSCALE_ETCD_USERNAME", "KAFSCALE_ETCD_PASSWORD",
		"KAFSCALE_S3_NAMESPACE", "KAFSCALE_SEGMENT_BYTES", "KAFSCALE_FLUSH_INTERVAL_MS",
		"KAFSCALE_BROKER_ADDR", "KAFSCALE_BROKER_HOST", "KAFSCALE_BROKER_PORT", "KAFSCALE_BROKER_ID",
		"KAFSCALE_METRICS_ADDR", "KAFSCALE_CONTROL_ADDR", "KAFSCALE_S3_BUCKET", "KAFSCALE_S3_REGION",
		"KAFSCALE_S3_ENDPOINT", "KAFSCALE_S3_READ_BUCKET", "KAFSCALE_S3_READ_REGION", "KAFSCALE_S3_READ_ENDPOINT",
		"KAFSCALE_S3_PATH_STYLE", "KAFSCALE_S3_KMS_ARN", "KAFSCALE_S3_ACCESS_KEY", "KAFSCALE_S3_SECRET_KEY",
		"KAFSCALE_S3_SESSION_TOKEN", "KAFSCALE_CACHE_BYTES", "KAFSCALE_READAHEAD_SEGMENTS",
		"KAFSCALE_AUTO_CREATE_TOPICS", "KAFSCALE_AUTO_CREATE_PARTITIONS", "KAFSCALE_USE_MEMORY_S3",
		"KAFSCALE_LOG_LEVEL", "KAFSCALE_TRACE_KAFKA", "KAFSCALE_THROUGHPUT_WINDOW_SEC",
		"KAFSCALE_S3_HEALTH_WINDOW_SEC", "KAFSCALE_S3_LATENCY_WARN_MS", "KAFSCALE_S3_LATENCY_CRIT_MS",
		"KAFSCALE_S3_ERROR_RATE_WARN", "KAFSCALE_S3_ERROR_RATE_CRIT", "KAFSCALE_STARTUP_TIMEOUT_SEC",
		"KAFSCALE_PRODUCE_SYNC_FLUSH",
	}
	var environ []string
	for _, name := range guide {
		environ = append(environ, name+"=x")
	}
	if unknown := Unknown(environ); len(unknown) > 0 {
		t.Errorf("the broker does not read these variables of the guide: %v", unknown)
	}
}

// The sweeper's grace must outlast the longest a flush may take to commit, which the S3 and
// etcd request bounds set; a grace that does not is refused with both names.
func TestSweepGraceMustOutlastAFlush(t *testing.T) {
	if _, err := Parse(env.Map(map[string]string{"KAFSCALE_S3_BUCKET": "b", "KAFSCALE_S3_REQUEST_TIMEOUT_MS": "60000"})); err != nil {
		t.Fatalf("a 60 s S3 bound under the default 10 min grace was refused: %v", err)
	}
	_, err := Parse(env.Map(map[string]string{"KAFSCALE_S3_BUCKET": "b", "KAFSCALE_S3_REQUEST_TIMEOUT_MS": "30000", "KAFSCALE_RETENTION_SWEEP_GRACE_MS": "60000"}))
	if err == nil || !strings.Contains(err.Error(), "KAFSCALE_RETENTION_SWEEP_GRACE_MS (60000) must exceed") || !strings.Contains(err.Error(), "KAFSCALE_S3_REQUEST_TIMEOUT_MS") {
		t.Fatalf("a grace shorter than a flush was not refused clearly: %v", err)
	}
}

// Defaults is every default in one place: it is what an empty environment parses to, the
// bucket aside.
func TestDefaultsAreTheEmptyEnvironment(t *testing.T) {
	parsed, err := Parse(env.Map(map[string]string{"KAFSCALE_S3_BUCKET": "b"}))
	if err != nil {
		t.Fatal(err)
	}
	d := Defaults()
	if d.S3.Bucket != "" {
		t.Fatalf("Defaults has bucket %q", d.S3.Bucket)
	}
	d.S3.Bucket = "b"
	if !reflect.DeepEqual(d, parsed) {
		t.Fatalf("Defaults differs from an empty environment:\n%+v\n%+v", d, parsed)
	}
}
