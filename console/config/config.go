// Package config reads the console's KAFSCALE_CONSOLE_* and KAFSCALE_UI_* environment
// variables once, into a typed struct, with every default in one place and a clear error for
// each bad value. docs/runtime-settings.md lists the same variables.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
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
	seen := map[string]bool{}
	_, _ = Parse(func(name string) (string, bool) { seen[name] = true; return "", false })
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Load reads the configuration from the process environment.
func Load() (*Console, error) { return Parse(os.LookupEnv) }

// Parse reads the configuration through lookup and reports every bad value at once.
func Parse(lookup func(string) (string, bool)) (*Console, error) {
	p := &parser{lookup: lookup}
	c := &Console{
		HTTPAddr:           p.str("KAFSCALE_CONSOLE_HTTP_ADDR", ":8080"),
		BasePath:           p.basePath("KAFSCALE_CONSOLE_BASE_PATH"),
		EtcdEndpoints:      p.list("KAFSCALE_CONSOLE_ETCD_ENDPOINTS"),
		EtcdUsername:       p.str("KAFSCALE_CONSOLE_ETCD_USERNAME", ""),
		EtcdPassword:       p.str("KAFSCALE_CONSOLE_ETCD_PASSWORD", ""),
		Namespace:          p.str("KAFSCALE_CONSOLE_NAMESPACE", "default"),
		Cluster:            p.str("KAFSCALE_CONSOLE_CLUSTER", "kafscale"),
		BrokerMetricsURL:   p.url("KAFSCALE_CONSOLE_BROKER_METRICS_URL"),
		OperatorMetricsURL: p.url("KAFSCALE_CONSOLE_OPERATOR_METRICS_URL"),
		SnapshotStale:      p.seconds("KAFSCALE_CONSOLE_SNAPSHOT_STALE_SEC", 7200, 60, 30*86400),
		Username:           p.secret("KAFSCALE_UI_USERNAME"),
		Password:           p.secret("KAFSCALE_UI_PASSWORD"),
		SessionTTL:         p.seconds("KAFSCALE_CONSOLE_SESSION_TTL_SEC", 8*3600, 60, 30*86400),
		TrustedProxies:     p.prefixes("KAFSCALE_CONSOLE_TRUSTED_PROXIES"),
		LoginBurst:         int(p.int("KAFSCALE_CONSOLE_LOGIN_BURST", 5, 1, 1000)),
		LoginRefill:        p.seconds("KAFSCALE_CONSOLE_LOGIN_REFILL_SEC", 12, 1, 3600),
		SampleInterval:     p.seconds("KAFSCALE_CONSOLE_SAMPLE_INTERVAL_SEC", 10, 1, 600),
		History:            time.Hour,
		RecordsMax:         int(p.int("KAFSCALE_CONSOLE_RECORDS_MAX", 500, 1, 10000)),
		RequestTimeout:     time.Duration(p.int("KAFSCALE_CONSOLE_REQUEST_TIMEOUT_MS", 5000, 100, 600000)) * time.Millisecond,
	}
	if len(c.EtcdEndpoints) == 0 {
		p.fail("KAFSCALE_CONSOLE_ETCD_ENDPOINTS is required: the etcd client URLs of the cluster (read-only access is enough)")
	}
	if (c.Username == "") != (c.Password == "") {
		p.fail("KAFSCALE_UI_USERNAME and KAFSCALE_UI_PASSWORD must be set together (or both left unset, which refuses every login)")
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		p.fail("KAFSCALE_CONSOLE_HTTP_ADDR=%q: want host:port, e.g. :8080", c.HTTPAddr)
	}
	if err := errors.Join(p.errs...); err != nil {
		return nil, err
	}
	return c, nil
}

type parser struct {
	lookup func(string) (string, bool)
	errs   []error
}

func (p *parser) fail(format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf(format, args...))
}

func (p *parser) str(name, def string) string {
	if v, ok := p.lookup(name); ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	return def
}

// secret is a credential: taken verbatim (a password may start or end with a space).
func (p *parser) secret(name string) string {
	v, _ := p.lookup(name)
	return v
}

func (p *parser) int(name string, def, lo, hi int64) int64 {
	v := p.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		p.fail("%s=%q: want a whole number from %d to %d", name, v, lo, hi)
		return def
	}
	return n
}

func (p *parser) seconds(name string, def, lo, hi int64) time.Duration {
	return time.Duration(p.int(name, def, lo, hi)) * time.Second
}

func (p *parser) list(name string) []string {
	var out []string
	for _, s := range strings.Split(p.str(name, ""), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (p *parser) url(name string) string {
	v := p.str(name, "")
	if v != "" && !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
		p.fail("%s=%q: want an http:// or https:// URL", name, v)
		return ""
	}
	return v
}

func (p *parser) basePath(name string) string {
	v := p.str(name, "/")
	if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, "?#") {
		p.fail("%s=%q: want a URL path starting with /, e.g. /kafscale/", name, v)
		return "/"
	}
	if !strings.HasSuffix(v, "/") {
		v += "/"
	}
	return v
}

func (p *parser) prefixes(name string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range p.list(name) {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			if addr, aerr := netip.ParseAddr(s); aerr == nil {
				pfx, err = addr.Prefix(addr.BitLen())
			}
		}
		if err != nil {
			p.fail("%s: %q is not a CIDR (10.0.0.0/8) or an IP address", name, s)
			continue
		}
		out = append(out, pfx.Masked())
	}
	return out
}
