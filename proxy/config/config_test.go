package config

import (
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kafscale/kafscale/internal/env/envdoc"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaults(t *testing.T) {
	c, err := Parse(env(map[string]string{"KAFSCALE_PROXY_ADVERTISED_HOST": "kafka.example.com"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.ListenAddr != ":9092" || c.AdvertisedPort != 9092 || c.AdvertisedHost != "kafka.example.com" || c.MetricsAddr != ":9093" {
		t.Fatalf("addresses: %+v", c)
	}
	if c.Namespace != "default" || c.Cluster != "kafscale" || c.ProxyProtocol || c.BrokerConns != 4 ||
		c.BrokerRequestTimeout != 10*time.Second || c.ShutdownGrace != 25*time.Second || c.MaxInflightBytes != 256<<20 {
		t.Fatalf("defaults: %+v", c)
	}
	c, err = Parse(env(map[string]string{"KAFSCALE_PROXY_LISTEN_ADDR": "127.0.0.1:19092"}))
	if err != nil || c.AdvertisedHost != "127.0.0.1" || c.AdvertisedPort != 19092 {
		t.Fatalf("advertised defaults to the listener: %+v %v", c, err)
	}
}

// Every bad value is reported at once, each naming its variable and what it wants.
func TestBadValuesNamed(t *testing.T) {
	_, err := Parse(env(map[string]string{
		"KAFSCALE_PROXY_LISTEN_ADDR":       "nope",
		"KAFSCALE_PROXY_ADVERTISED_PORT":   "70000",
		"KAFSCALE_PROXY_PROXY_PROTOCOL":    "maybe",
		"KAFSCALE_PROXY_NAMESPACE":         "a/b",
		"KAFSCALE_PROXY_ETCD_USERNAME":     "root",
		"KAFSCALE_PROXY_BROKER_CONNS":      "0",
		"KAFSCALE_PROXY_LOG_LEVEL":         "loud",
		"KAFSCALE_PROXY_ETCD_ENDPOINTS":    " , ",
		"KAFSCALE_PROXY_MAX_REQUEST_BYTES": "12",
	}))
	var cerr *Error
	if !errors.As(err, &cerr) || len(cerr.Problems) != 9 {
		t.Fatalf("want 9 problems, got %v", err)
	}
	for _, name := range []string{"KAFSCALE_PROXY_LISTEN_ADDR", "KAFSCALE_PROXY_ADVERTISED_PORT", "KAFSCALE_PROXY_PROXY_PROTOCOL",
		"KAFSCALE_PROXY_NAMESPACE", "KAFSCALE_PROXY_ETCD_PASSWORD", "KAFSCALE_PROXY_BROKER_CONNS", "KAFSCALE_PROXY_LOG_LEVEL",
		"KAFSCALE_PROXY_ETCD_ENDPOINTS", "KAFSCALE_PROXY_MAX_REQUEST_BYTES"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("the error does not name %s:\n%v", name, err)
		}
	}
}

func TestUnknownNamesTypos(t *testing.T) {
	got := Unknown([]string{"KAFSCALE_PROXY_LISTEN_ADDR=:1", "KAFSCALE_PROXY_LISTEN_ADR=:1", "KAFSCALE_S3_BUCKET=b"})
	if len(got) != 1 || got[0] != "KAFSCALE_PROXY_LISTEN_ADR" {
		t.Fatalf("%v", got)
	}
}

// Every variable the proxy reads is in the proxy settings table of docs/runtime-settings.md,
// and every variable of that table is read.
func TestRuntimeSettingsDocumentsEveryVariable(t *testing.T) {
	doc, err := os.ReadFile("../../docs/runtime-settings.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := envdoc.In(envdoc.Variables(string(doc), func(h string) bool { return strings.TrimSpace(h) == "### Proxy settings" },
		regexp.MustCompile("`(KAFSCALE_[A-Z0-9_]+)`"), "| `KAFSCALE_"))
	read := map[string]bool{}
	for _, n := range Names() {
		read[n] = true
		if !documented[n] {
			t.Errorf("%s is read but not in the proxy settings of docs/runtime-settings.md", n)
		}
	}
	for n := range documented {
		if !read[n] {
			t.Errorf("%s is documented but the proxy does not read it", n)
		}
	}
	if len(read) < 15 {
		t.Fatalf("only %d variables read", len(read))
	}
}

// The internal listener: off by default, its advertised endpoint defaulting as the main
// one's, and its port never one the proxy already listens on.
func TestInternalListener(t *testing.T) {
	c, err := Parse(env(map[string]string{}))
	if err != nil || c.Internal != nil {
		t.Fatalf("no internal listener by default: %+v %v", c.Internal, err)
	}
	c, err = Parse(env(map[string]string{
		"KAFSCALE_PROXY_ADVERTISED_HOST":          "127.0.0.1",
		"KAFSCALE_PROXY_INTERNAL_LISTEN_ADDR":     ":9094",
		"KAFSCALE_PROXY_INTERNAL_ADVERTISED_HOST": "kafscale-proxy-internal.kafscale.svc",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Internal == nil || c.Internal.ListenAddr != ":9094" || c.Internal.AdvertisedHost != "kafscale-proxy-internal.kafscale.svc" ||
		c.Internal.AdvertisedPort != 9094 || c.AdvertisedHost != "127.0.0.1" || c.AdvertisedPort != 9092 {
		t.Fatalf("internal listener: %+v, main %s:%d", c.Internal, c.AdvertisedHost, c.AdvertisedPort)
	}
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"KAFSCALE_PROXY_INTERNAL_LISTEN_ADDR": ":9092"}, "port 9092 is already"},
		{map[string]string{"KAFSCALE_PROXY_INTERNAL_LISTEN_ADDR": ":9093"}, "port 9093 is already"},
		{map[string]string{"KAFSCALE_PROXY_INTERNAL_ADVERTISED_HOST": "x"}, "set KAFSCALE_PROXY_INTERNAL_LISTEN_ADDR"},
		{map[string]string{"KAFSCALE_PROXY_INTERNAL_LISTEN_ADDR": "nope"}, "KAFSCALE_PROXY_INTERNAL_LISTEN_ADDR=\"nope\""},
	} {
		_, err := Parse(env(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: want an error with %q, got %v", tc.env, tc.want, err)
		}
	}
}
