package config

import (
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

func env(kv map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := kv[name]
		return v, ok
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse(env(map[string]string{"KAFSCALE_S3_BUCKET": "b", "KAFSCALE_BROKER_ADDR": "127.0.0.1:9092"}))
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
	c, err := Parse(env(map[string]string{
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
	c, err := Parse(env(map[string]string{"KAFSCALE_S3_BUCKET": "b"}))
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if c.ControlAddr != "" || c.PodName != host {
		t.Errorf("defaults: control %q pod %q, want no control service and the host name %q", c.ControlAddr, c.PodName, host)
	}
	c, err = Parse(env(map[string]string{"KAFSCALE_S3_BUCKET": "b", "KAFSCALE_CONTROL_ADDR": ":9094", "KAFSCALE_POD_NAME": "broker-abc"}))
	if err != nil || c.ControlAddr != ":9094" || c.PodName != "broker-abc" {
		t.Errorf("set: %+v %v", c, err)
	}
}

func TestAutoNodeID(t *testing.T) {
	for _, v := range []string{"auto", "AUTO", " auto "} {
		c, err := Parse(env(map[string]string{"KAFSCALE_S3_BUCKET": "b", "KAFSCALE_BROKER_ID": v}))
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if !c.AutoNodeID || c.NodeID != 0 {
			t.Errorf("%q: AutoNodeID=%v NodeID=%d, want true, 0", v, c.AutoNodeID, c.NodeID)
		}
	}
	c, err := Parse(env(map[string]string{"KAFSCALE_S3_BUCKET": "b", "KAFSCALE_BROKER_ID": "3"}))
	if err != nil || c.AutoNodeID || c.NodeID != 3 {
		t.Fatalf("explicit id: %+v, %v", c, err)
	}
	if _, err := Parse(env(map[string]string{"KAFSCALE_S3_BUCKET": "b", "KAFSCALE_BROKER_ID": "automatic"})); err == nil ||
		!strings.Contains(err.Error(), "KAFSCALE_BROKER_ID") {
		t.Fatalf("KAFSCALE_BROKER_ID=automatic: %v", err)
	}
}

func TestBadValuesAreAllReportedByName(t *testing.T) {
	_, err := Parse(env(map[string]string{
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
	documented := map[string]bool{} // name -> documented in a broker section
	name := regexp.MustCompile("`(KAFSCALE_[A-Z0-9_]+)`")
	brokerSection := false
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "#") {
			brokerSection = strings.HasPrefix(line, "## Broker") || strings.HasPrefix(line, "### Brokers")
			continue
		}
		// The first column of a table row names the variable(s).
		if cells := strings.Split(line, "|"); len(cells) > 2 && strings.HasPrefix(line, "| `KAFSCALE_") {
			for _, m := range name.FindAllStringSubmatch(cells[1], -1) {
				documented[m[1]] = documented[m[1]] || brokerSection
			}
		}
	}
	for _, name := range Names() {
		if _, ok := documented[name]; !ok {
			t.Errorf("%s is read but not documented in docs/runtime-settings.md", name)
		}
	}
	// Other sections belong to other binaries (operator, proxy, console, snapshot jobs).
	for name, broker := range documented {
		if broker && !known[name] {
			t.Errorf("%s is documented but the broker does not read it", name)
		}
	}
}

func TestSecuritySettings(t *testing.T) {
	c, err := Parse(env(map[string]string{"KAFSCALE_S3_BUCKET": "b"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.ACLEnabled || c.ACL != nil || c.PrincipalSource != PrincipalClientID || c.ProxyProtocol {
		t.Fatalf("defaults: %+v", c)
	}
	c, err = Parse(env(map[string]string{
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
		{"bad rule", map[string]string{"KAFSCALE_ACL_CONFIG_JSON": `{"rules":[{"principal":"bob","operations":["Read"],"resource":{"type":"topic","name":"t"}}]}`},
			`KAFSCALE_ACL_CONFIG_JSON: rule 0 (principal "bob")`},
		{"not json", map[string]string{"KAFSCALE_ACL_CONFIG_JSON": `rules`}, "KAFSCALE_ACL_CONFIG_JSON: not a valid ACL document"},
		{"bad enabled", map[string]string{"KAFSCALE_ACL_ENABLED": "sometimes"}, "KAFSCALE_ACL_ENABLED"},
		{"bad source", map[string]string{"KAFSCALE_PRINCIPAL_SOURCE": "cert"}, "KAFSCALE_PRINCIPAL_SOURCE=\"cert\""},
		{"proxy_addr without proxy protocol", map[string]string{"KAFSCALE_PRINCIPAL_SOURCE": "proxy_addr"}, "needs KAFSCALE_PROXY_PROTOCOL=true"},
		{"bad proxy protocol", map[string]string{"KAFSCALE_PROXY_PROTOCOL": "v2"}, "KAFSCALE_PROXY_PROTOCOL"},
	}
	for _, tc := range cases {
		tc.env["KAFSCALE_S3_BUCKET"] = "b"
		if _, err := Parse(env(tc.env)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
	if got := Unknown([]string{"KAFSCALE_PROXY_PROTOCOL=true", "KAFSCALE_PROXY_PROTOCOLL=true"}); len(got) != 0 {
		// KAFSCALE_PROXY_* other than the broker's own are the proxy's, not typos.
		t.Fatalf("%v", got)
	}
}
