package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func env(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

func TestDefaults(t *testing.T) {
	c, err := Parse(env(map[string]string{"KAFSCALE_CONSOLE_ETCD_ENDPOINTS": "http://etcd:2379, http://etcd2:2379"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":8080" || c.BasePath != "/" || c.Namespace != "default" || c.Cluster != "kafscale" {
		t.Errorf("defaults: %+v", c)
	}
	if len(c.EtcdEndpoints) != 2 || c.EtcdEndpoints[1] != "http://etcd2:2379" {
		t.Errorf("endpoints %q", c.EtcdEndpoints)
	}
	if c.LoginConfigured() {
		t.Error("no login is configured by default")
	}
	if c.SessionTTL != 8*time.Hour || c.SampleInterval != 10*time.Second || c.History != time.Hour || c.LoginBurst != 5 {
		t.Errorf("defaults: %+v", c)
	}
}

func TestValues(t *testing.T) {
	c, err := Parse(env(map[string]string{
		"KAFSCALE_CONSOLE_ETCD_ENDPOINTS":      "http://etcd:2379",
		"KAFSCALE_CONSOLE_BASE_PATH":           "/kafscale",
		"KAFSCALE_UI_USERNAME":                 "admin",
		"KAFSCALE_UI_PASSWORD":                 " pass word ",
		"KAFSCALE_CONSOLE_TRUSTED_PROXIES":     "10.0.0.0/8, 192.168.1.7",
		"KAFSCALE_CONSOLE_SAMPLE_INTERVAL_SEC": "2",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.BasePath != "/kafscale/" {
		t.Errorf("base path %q, want a trailing slash added", c.BasePath)
	}
	if !c.LoginConfigured() || c.Password != " pass word " {
		t.Errorf("login %q/%q: the password must be kept verbatim", c.Username, c.Password)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32")}
	if len(c.TrustedProxies) != 2 || c.TrustedProxies[0] != want[0] || c.TrustedProxies[1] != want[1] {
		t.Errorf("trusted proxies %v, want %v", c.TrustedProxies, want)
	}
	if c.SampleInterval != 2*time.Second {
		t.Errorf("sample interval %s", c.SampleInterval)
	}
}

func TestBadValuesAreNamed(t *testing.T) {
	_, err := Parse(env(map[string]string{
		"KAFSCALE_UI_USERNAME":                 "admin",
		"KAFSCALE_CONSOLE_TRUSTED_PROXIES":     "everyone",
		"KAFSCALE_CONSOLE_SAMPLE_INTERVAL_SEC": "0",
		"KAFSCALE_CONSOLE_BROKER_METRICS_URL":  "broker:9093",
		"KAFSCALE_CONSOLE_BASE_PATH":           "ui",
	}))
	if err == nil {
		t.Fatal("bad values accepted")
	}
	for _, name := range []string{"KAFSCALE_CONSOLE_ETCD_ENDPOINTS is required", "KAFSCALE_UI_PASSWORD must be set together",
		"KAFSCALE_CONSOLE_TRUSTED_PROXIES", "KAFSCALE_CONSOLE_SAMPLE_INTERVAL_SEC", "KAFSCALE_CONSOLE_BROKER_METRICS_URL", "KAFSCALE_CONSOLE_BASE_PATH"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
}
