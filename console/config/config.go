// Package config reads the console's KAFSCALE_CONSOLE_* and KAFSCALE_UI_* environment
// variables once, into a typed struct, with every default in one place and a clear error for
// each bad value. docs/runtime-settings.md lists the same variables.
package config

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	envparse "github.com/kafscale/kafscale/internal/env"
)

// Console is the console's whole configuration.
type Console struct {
	// HTTPAddr is the listener of the UI, the API, /healthz, /readyz and /metrics
	// (KAFSCALE_CONSOLE_HTTP_ADDR).
	HTTPAddr string
	// BasePath is the path prefix the console is served under, with leading and trailing
	// slashes (KAFSCALE_CONSOLE_BASE_PATH): "/" or e.g. "/kafscale/" behind an Ingress that
	// does not rewrite paths.
	BasePath string

	// Etcd is read-only access to the cluster's metadata, groups and offsets.
	EtcdEndpoints []string // KAFSCALE_CONSOLE_ETCD_ENDPOINTS
	EtcdUsername  string   // KAFSCALE_CONSOLE_ETCD_USERNAME
	EtcdPassword  string   // KAFSCALE_CONSOLE_ETCD_PASSWORD
	Namespace     string   // KAFSCALE_CONSOLE_NAMESPACE: etcd keys live under /kafscale/<namespace>/<cluster>/
	Cluster       string   // KAFSCALE_CONSOLE_CLUSTER

	// BrokerMetricsURL, when set, is where each broker's metrics are read instead of the
	// metrics address it publishes in its etcd registration: a URL in which {host} is the
	// broker's advertised host and {node} its NodeID (KAFSCALE_CONSOLE_BROKER_METRICS_URL).
	BrokerMetricsURL string
	// OperatorMetricsURL is the operator's /metrics, read for the managed-etcd snapshot
	// status (KAFSCALE_CONSOLE_OPERATOR_METRICS_URL); empty: the status is unknown.
	OperatorMetricsURL string
	// SnapshotStale is the age after which the newest etcd snapshot counts as failing
	// (KAFSCALE_CONSOLE_SNAPSHOT_STALE_SEC), like the chart's KafscaleSnapshotStale alert.
	SnapshotStale time.Duration

	// Username and Password are the login (KAFSCALE_UI_USERNAME, KAFSCALE_UI_PASSWORD).
	// Both empty: no login is possible and the API refuses everything.
	Username string
	Password string
	// SessionTTL is how long a login lasts (KAFSCALE_CONSOLE_SESSION_TTL_SEC).
	SessionTTL time.Duration
	// TrustedProxies are the peers (an Ingress controller) whose X-Forwarded-For and
	// X-Forwarded-Proto headers are believed (KAFSCALE_CONSOLE_TRUSTED_PROXIES, CIDRs).
	TrustedProxies []netip.Prefix
	// LoginBurst failed logins are allowed per client at once, then one more every
	// LoginRefill (KAFSCALE_CONSOLE_LOGIN_BURST, KAFSCALE_CONSOLE_LOGIN_REFILL_SEC).
	LoginBurst  int
	LoginRefill time.Duration

	// SampleInterval is how often the server samples throughput and lag for the charts
	// (KAFSCALE_CONSOLE_SAMPLE_INTERVAL_SEC); History is how much it keeps (one hour).
	SampleInterval time.Duration
	History        time.Duration
	// RecordsMax bounds the records one viewer request returns (KAFSCALE_CONSOLE_RECORDS_MAX).
	RecordsMax int
	// RequestTimeout bounds each etcd read, metrics scrape and record fetch
	// (KAFSCALE_CONSOLE_REQUEST_TIMEOUT_MS).
	RequestTimeout time.Duration
}

// LoginConfigured reports whether a login is set: without one the API refuses everything.
func (c *Console) LoginConfigured() bool { return c.Username != "" && c.Password != "" }

// Names lists every variable Parse reads.
func Names() []string {
	return envparse.Names(func(lookup func(string) (string, bool)) { _, _ = Parse(lookup) })
}

// Unknown returns the KAFSCALE_CONSOLE_* and KAFSCALE_UI_* variables in environ that the
// console does not read (most likely typos), sorted.
func Unknown(environ []string) []string {
	return envparse.Unknown(environ, Names(), func(name string) bool {
		return strings.HasPrefix(name, "KAFSCALE_CONSOLE_") || strings.HasPrefix(name, "KAFSCALE_UI_")
	})
}

// Load reads the configuration from the process environment.
func Load() (*Console, error) { return Parse(os.LookupEnv) }

// Parse reads the configuration through lookup and reports every bad value at once.
func Parse(lookup func(string) (string, bool)) (*Console, error) {
	p := envparse.New(lookup)
	c := &Console{
		HTTPAddr:           p.Str("KAFSCALE_CONSOLE_HTTP_ADDR", ":8080"),
		BasePath:           basePath(p, "KAFSCALE_CONSOLE_BASE_PATH"),
		EtcdEndpoints:      p.OptionalList("KAFSCALE_CONSOLE_ETCD_ENDPOINTS"),
		EtcdUsername:       p.Str("KAFSCALE_CONSOLE_ETCD_USERNAME", ""),
		EtcdPassword:       p.Str("KAFSCALE_CONSOLE_ETCD_PASSWORD", ""),
		Namespace:          p.Str("KAFSCALE_CONSOLE_NAMESPACE", "default"),
		Cluster:            p.Str("KAFSCALE_CONSOLE_CLUSTER", "kafscale"),
		BrokerMetricsURL:   p.URL("KAFSCALE_CONSOLE_BROKER_METRICS_URL"),
		OperatorMetricsURL: p.URL("KAFSCALE_CONSOLE_OPERATOR_METRICS_URL"),
		SnapshotStale:      p.Duration("KAFSCALE_CONSOLE_SNAPSHOT_STALE_SEC", time.Second, 7200, 60, 30*86400),
		Username:           p.Secret("KAFSCALE_UI_USERNAME"),
		Password:           p.Secret("KAFSCALE_UI_PASSWORD"),
		SessionTTL:         p.Duration("KAFSCALE_CONSOLE_SESSION_TTL_SEC", time.Second, 8*3600, 60, 30*86400),
		TrustedProxies:     prefixes(p, "KAFSCALE_CONSOLE_TRUSTED_PROXIES"),
		LoginBurst:         int(p.Int("KAFSCALE_CONSOLE_LOGIN_BURST", 5, 1, 1000)),
		LoginRefill:        p.Duration("KAFSCALE_CONSOLE_LOGIN_REFILL_SEC", time.Second, 12, 1, 3600),
		SampleInterval:     p.Duration("KAFSCALE_CONSOLE_SAMPLE_INTERVAL_SEC", time.Second, 10, 1, 600),
		History:            time.Hour,
		RecordsMax:         int(p.Int("KAFSCALE_CONSOLE_RECORDS_MAX", 500, 1, 10000)),
		RequestTimeout:     p.Duration("KAFSCALE_CONSOLE_REQUEST_TIMEOUT_MS", time.Millisecond, 5000, 100, 600000),
	}
	if len(c.EtcdEndpoints) == 0 {
		p.Fail("KAFSCALE_CONSOLE_ETCD_ENDPOINTS is required: the etcd client URLs of the cluster (read-only access is enough)")
	}
	if (c.Username == "") != (c.Password == "") {
		p.Fail("KAFSCALE_UI_USERNAME and KAFSCALE_UI_PASSWORD must be set together (or both left unset, which refuses every login)")
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		p.Fail("KAFSCALE_CONSOLE_HTTP_ADDR=%q: want host:port, e.g. :8080", c.HTTPAddr)
	}
	if err := p.Err("console"); err != nil {
		return nil, err
	}
	return c, nil
}

func basePath(p *envparse.Parser, name string) string {
	v := p.Str(name, "/")
	if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, "?#") {
		p.Fail("%s=%q: want a URL path starting with /, e.g. /kafscale/", name, v)
		return "/"
	}
	if !strings.HasSuffix(v, "/") {
		v += "/"
	}
	return v
}

func prefixes(p *envparse.Parser, name string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range p.OptionalList(name) {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			if addr, aerr := netip.ParseAddr(s); aerr == nil {
				pfx, err = addr.Prefix(addr.BitLen())
			}
		}
		if err != nil {
			p.Fail("%s: %q is not a CIDR (10.0.0.0/8) or an IP address", name, s)
			continue
		}
		out = append(out, pfx.Masked())
	}
	return out
}
