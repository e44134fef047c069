// Package config reads every KAFSCALE_PROXY_* environment variable of the proxy once, into a
// typed struct, with the defaults in one place and one clear message per bad value.
// docs/runtime-settings.md ("Proxy") lists the same variables; a test keeps them in step.
package config

import (
	"log/slog"
	"math"
	"os"
	"strings"
	"time"

	envparse "github.com/kafscale/kafscale/internal/env"
)

// Proxy is the proxy's whole configuration.
type Proxy struct {
	// ListenAddr is the Kafka listener, host:port (KAFSCALE_PROXY_LISTEN_ADDR).
	ListenAddr string
	// AdvertisedHost and AdvertisedPort replace every broker address in the answers clients
	// get (KAFSCALE_PROXY_ADVERTISED_HOST, KAFSCALE_PROXY_ADVERTISED_PORT); they default to
	// the listener's host (the machine's hostname when it listens on all interfaces) and port.
	AdvertisedHost string
	AdvertisedPort int32
	// Internal is a second Kafka listener with an endpoint of its own, or nil
	// (KAFSCALE_PROXY_INTERNAL_LISTEN_ADDR unset). As with a Kafka broker's listeners, a
	// client only ever sees the advertised endpoint of the listener it connected to: e.g.
	// the main listener advertises what clients outside Kubernetes reach (a node port, a
	// load balancer) and the internal one the Service's cluster DNS name for pods.
	Internal *Listener
	// MetricsAddr serves /metrics, /healthz and /readyz (KAFSCALE_PROXY_METRICS_ADDR).
	MetricsAddr string
	// LogLevel is debug, info, warn or error (KAFSCALE_PROXY_LOG_LEVEL).
	LogLevel slog.Level
	// Pprof adds Go's profiling endpoints under /debug/pprof/ to the metrics listener
	// (KAFSCALE_PROXY_PPROF).
	Pprof bool

	// Etcd is where the metadata snapshot and the broker registrations are read.
	Etcd Etcd
	// Namespace and Cluster name the etcd key prefix /kafscale/<namespace>/<cluster>/
	// (KAFSCALE_PROXY_NAMESPACE, KAFSCALE_PROXY_CLUSTER).
	Namespace string
	Cluster   string

	// ProxyProtocol sends a PROXY protocol v2 header carrying the client's address at the
	// start of every broker connection made for a client (KAFSCALE_PROXY_PROXY_PROTOCOL).
	ProxyProtocol bool

	// BrokerDialTimeout bounds connecting to a broker (KAFSCALE_PROXY_BROKER_DIAL_TIMEOUT_MS).
	BrokerDialTimeout time.Duration
	// BrokerRequestTimeout is added to a request's own timeout (Produce's timeout, Fetch's
	// MaxWait, JoinGroup's rebalance timeout, …) to give the deadline of its calls to
	// brokers; requests without one get it alone (KAFSCALE_PROXY_BROKER_REQUEST_TIMEOUT_MS).
	BrokerRequestTimeout time.Duration
	// BrokerConns is the number of pipelined connections per broker shared by the clients'
	// produce and control requests (KAFSCALE_PROXY_BROKER_CONNS).
	BrokerConns int

	// MaxRequestBytes caps one client request frame; a larger frame closes that client's
	// connection (KAFSCALE_PROXY_MAX_REQUEST_BYTES).
	MaxRequestBytes int32
	// MaxInflightBytes bounds the request bytes read and not yet answered, all clients
	// together (KAFSCALE_PROXY_MAX_INFLIGHT_BYTES); MaxInflightBytesPerConn per client
	// connection (KAFSCALE_PROXY_MAX_INFLIGHT_BYTES_PER_CONN). A connection whose next
	// frame does not fit waits before reading it; a frame larger than a bound is read
	// when nothing else is in flight.
	MaxInflightBytes        int64
	MaxInflightBytesPerConn int64

	// ShutdownGrace is how long requests in flight get to finish after SIGTERM
	// (KAFSCALE_PROXY_SHUTDOWN_GRACE_SEC); /readyz answers 503 from the signal on.
	ShutdownGrace time.Duration
}

// Listener is one more Kafka listener and the endpoint its clients are given.
type Listener struct {
	// ListenAddr is host:port (KAFSCALE_PROXY_INTERNAL_LISTEN_ADDR).
	ListenAddr string
	// AdvertisedHost and AdvertisedPort (KAFSCALE_PROXY_INTERNAL_ADVERTISED_HOST,
	// KAFSCALE_PROXY_INTERNAL_ADVERTISED_PORT) default as the main listener's do.
	AdvertisedHost string
	AdvertisedPort int32
}

// Etcd is how the proxy reaches etcd.
type Etcd struct {
	Endpoints   []string      // KAFSCALE_PROXY_ETCD_ENDPOINTS, comma-separated
	Username    string        // KAFSCALE_PROXY_ETCD_USERNAME
	Password    string        // KAFSCALE_PROXY_ETCD_PASSWORD
	DialTimeout time.Duration // KAFSCALE_PROXY_ETCD_DIAL_TIMEOUT_MS
}

// Load reads the configuration from the process environment.
func Load() (*Proxy, error) { return Parse(os.LookupEnv) }

// Parse reads the configuration through lookup (os.LookupEnv in production). Every bad value
// is reported, not just the first.
func Parse(lookup func(string) (string, bool)) (*Proxy, error) {
	p := parser{envparse.New(lookup)}
	c := &Proxy{}
	c.ListenAddr = p.str("KAFSCALE_PROXY_LISTEN_ADDR", ":9092")
	listenHost, listenPort := p.hostPort("KAFSCALE_PROXY_LISTEN_ADDR", c.ListenAddr)
	c.AdvertisedHost = p.str("KAFSCALE_PROXY_ADVERTISED_HOST", defaultAdvertisedHost(listenHost))
	c.AdvertisedPort = int32(p.int("KAFSCALE_PROXY_ADVERTISED_PORT", int64(max(listenPort, 1)), 1, 65535))
	c.MetricsAddr = p.str("KAFSCALE_PROXY_METRICS_ADDR", ":9093")
	_, metricsPort := p.hostPort("KAFSCALE_PROXY_METRICS_ADDR", c.MetricsAddr)
	c.Internal = p.internalListener(listenPort, metricsPort)
	c.LogLevel = p.level("KAFSCALE_PROXY_LOG_LEVEL", slog.LevelInfo)
	c.Pprof = p.bool("KAFSCALE_PROXY_PPROF", false)

	c.Etcd = Etcd{
		Endpoints:   p.list("KAFSCALE_PROXY_ETCD_ENDPOINTS", "http://127.0.0.1:2379"),
		Username:    p.str("KAFSCALE_PROXY_ETCD_USERNAME", ""),
		Password:    p.str("KAFSCALE_PROXY_ETCD_PASSWORD", ""),
		DialTimeout: p.millis("KAFSCALE_PROXY_ETCD_DIAL_TIMEOUT_MS", 5000, 1),
	}
	if (c.Etcd.Username == "") != (c.Etcd.Password == "") {
		p.fail("KAFSCALE_PROXY_ETCD_USERNAME and KAFSCALE_PROXY_ETCD_PASSWORD must be set together")
	}
	c.Namespace = p.str("KAFSCALE_PROXY_NAMESPACE", "default")
	c.Cluster = p.str("KAFSCALE_PROXY_CLUSTER", "kafscale")
	p.keySegment("KAFSCALE_PROXY_NAMESPACE", c.Namespace)
	p.keySegment("KAFSCALE_PROXY_CLUSTER", c.Cluster)
	c.ProxyProtocol = p.bool("KAFSCALE_PROXY_PROXY_PROTOCOL", false)

	c.BrokerDialTimeout = p.millis("KAFSCALE_PROXY_BROKER_DIAL_TIMEOUT_MS", 5000, 1)
	c.BrokerRequestTimeout = p.millis("KAFSCALE_PROXY_BROKER_REQUEST_TIMEOUT_MS", 10000, 100)
	c.BrokerConns = int(p.int("KAFSCALE_PROXY_BROKER_CONNS", 4, 1, 64))

	c.MaxRequestBytes = int32(p.int("KAFSCALE_PROXY_MAX_REQUEST_BYTES", 100<<20, 1<<10, math.MaxInt32))
	c.MaxInflightBytes = p.int("KAFSCALE_PROXY_MAX_INFLIGHT_BYTES", 256<<20, 1<<20, 1<<40)
	c.MaxInflightBytesPerConn = p.int("KAFSCALE_PROXY_MAX_INFLIGHT_BYTES_PER_CONN", 64<<20, 64<<10, 1<<40)
	c.ShutdownGrace = p.seconds("KAFSCALE_PROXY_SHUTDOWN_GRACE_SEC", 25, 0)
	if err := p.Err("proxy"); err != nil {
		return nil, err
	}
	return c, nil
}

// Error lists every problem found in the configuration.
type Error = envparse.Error

// Names returns every variable Parse reads, sorted.
func Names() []string {
	return envparse.Names(func(lookup func(string) (string, bool)) { _, _ = Parse(lookup) })
}

// Unknown returns the KAFSCALE_PROXY_* variables in environ that the proxy does not read
// (most likely typos), sorted.
func Unknown(environ []string) []string {
	return envparse.Unknown(environ, Names(), func(name string) bool { return strings.HasPrefix(name, "KAFSCALE_PROXY_") })
}

var defaultAdvertisedHost = envparse.AdvertisedHost

// internalListener reads the KAFSCALE_PROXY_INTERNAL_* variables: nil without a listen
// address, and an error when its port is one the proxy already listens on.
func (p *parser) internalListener(listenPort, metricsPort int) *Listener {
	const addrVar = "KAFSCALE_PROXY_INTERNAL_LISTEN_ADDR"
	addr := p.str(addrVar, "")
	host := p.str("KAFSCALE_PROXY_INTERNAL_ADVERTISED_HOST", "")
	port := p.int("KAFSCALE_PROXY_INTERNAL_ADVERTISED_PORT", 0, 1, 65535)
	if addr == "" {
		if host != "" || port != 0 {
			p.fail("KAFSCALE_PROXY_INTERNAL_ADVERTISED_HOST and _PORT need the internal listener: set %s (e.g. :9094)", addrVar)
		}
		return nil
	}
	lhost, lport := p.hostPort(addrVar, addr)
	if lport != 0 && (lport == listenPort || lport == metricsPort) {
		p.fail("%s=%q: port %d is already KAFSCALE_PROXY_LISTEN_ADDR's or KAFSCALE_PROXY_METRICS_ADDR's; give the internal listener a port of its own", addrVar, addr, lport)
	}
	if host == "" {
		host = defaultAdvertisedHost(lhost)
	}
	if port == 0 {
		port = int64(max(lport, 1))
	}
	return &Listener{ListenAddr: addr, AdvertisedHost: host, AdvertisedPort: int32(port)}
}

// parser is the shared environment parser (internal/env) under the helper names Parse uses.
type parser struct{ *envparse.Parser }

func (p parser) str(name, def string) string                { return p.Str(name, def) }
func (p parser) int(name string, def, min, max int64) int64 { return p.Int(name, def, min, max) }
func (p parser) bool(name string, def bool) bool            { return p.Bool(name, def) }
func (p parser) millis(name string, def, min int64) time.Duration {
	return p.Millis(name, def, min)
}
func (p parser) seconds(name string, def, min int64) time.Duration {
	return p.Seconds(name, def, min)
}
func (p parser) list(name, def string) []string               { return p.List(name, def) }
func (p parser) level(name string, def slog.Level) slog.Level { return p.Level(name, def) }
func (p parser) hostPort(name, v string) (string, int)        { return p.HostPort(name, v) }
func (p parser) keySegment(name, v string)                    { p.KeySegment(name, v) }
func (p parser) fail(format string, args ...any)              { p.Fail(format, args...) }
