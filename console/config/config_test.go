package config

import (
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	envparse "github.com/kafscale/kafscale/internal/env"
	"github.com/kafscale/kafscale/internal/env/envdoc"
)

func TestDefaults(t *testing.T) {
	c, err := Parse(envparse.Map(map[string]string{"KAFSCALE_CONSOLE_ETCD_ENDPOINTS": "http://etcd:2379, http://etcd2:2379"}))
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
	c, err := Parse(envparse.Map(map[string]string{
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
	_, err := Parse(envparse.Map(map[string]string{
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

// Every variable the console reads is documented in the console section of
// docs/runtime-settings.md, and every variable documented there is read.
func TestRuntimeSettingsDocumentsEveryVariable(t *testing.T) {
	doc, err := os.ReadFile("../../docs/runtime-settings.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := envdoc.In(envdoc.Variables(string(doc), func(h string) bool { return h == "### Console" },
		regexp.MustCompile("`((?:KAFSCALE_CONSOLE|KAFSCALE_UI)_[A-Z0-9_]+)`"), ""))
	read := map[string]bool{}
	for _, n := range Names() {
		read[n] = true
		if !documented[n] {
			t.Errorf("%s is read but not documented in the console section of docs/runtime-settings.md", n)
		}
	}
	for n := range documented {
		if !read[n] {
			t.Errorf("%s is documented but the console does not read it", n)
		}
	}
	if len(read) < 15 {
		t.Fatalf("Names() found only %v", Names())
	}
}
