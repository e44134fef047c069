// Package local is the embedded local platform behind `make run`: an etcd server
// (go.etcd.io/etcd/server/v3/embed) and an S3-compatible store (gofakes3 on a bbolt file)
// in this process, and one or more brokers on top, with every byte under one directory
// (./.kafscale by default) so data survives restarts. No cluster, no Docker, no downloads.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3bolt"
	"github.com/kafscale/kafscale/broker/app"
	"github.com/kafscale/kafscale/broker/config"
	proxyapp "github.com/kafscale/kafscale/proxy/app"
	proxyconfig "github.com/kafscale/kafscale/proxy/config"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/server/v3/embed"
)

// Options describe the local platform. Ports of 0 pick free ones.
type Options struct {
	// Dir holds etcd's data directory and the S3 store file.
	Dir string
	// Clean removes Dir before starting.
	Clean bool
	// Brokers is how many brokers to run (node ids 0..Brokers-1).
	Brokers int
	// Host is the address everything listens on and brokers advertise.
	Host string
	// EtcdPort and S3Port are the client ports of etcd and the S3 store.
	EtcdPort, S3Port int
	// KafkaPort is broker 0's Kafka port; broker i listens on KafkaPort+2i and serves
	// metrics on KafkaPort+2i+1. With 0 every port is picked freely.
	KafkaPort int
	// ConsolePort is the operations console's HTTP port (0: a free one).
	ConsolePort int
	// Env overrides broker settings (KAFSCALE_* names), e.g. a shorter flush interval.
	Env map[string]string
	// Proxy starts the Kafka-aware proxy in front of the brokers; it is then the bootstrap
	// address. It listens on KafkaPort (its metrics on KafkaPort+1) and the brokers move up
	// by two ports (broker i on KafkaPort+2+2i).
	Proxy bool
	// Logger receives the brokers' logs.
	Logger *slog.Logger
	// Out receives the banner with the bootstrap address and a kcat example.
	Out io.Writer
}

// Bucket is the S3 bucket the local brokers write to.
const Bucket = "kafscale"

// Platform is a running local platform.
type Platform struct {
	EtcdEndpoint string
	S3Endpoint   string
	Brokers      []app.Ready
	// Proxy is the proxy in front of the brokers (nil without Options.Proxy).
	Proxy *proxyapp.Ready
	// Console is the operations console beside them.
	Console *Console
}

// Bootstrap is the address clients start from: the proxy's, or with no proxy the
// comma-separated list of the brokers' advertised addresses.
func (p *Platform) Bootstrap() string {
	if p.Proxy != nil {
		return p.Proxy.Advertised
	}
	return p.BrokerAddrs()
}

// BrokerAddrs is the comma-separated list of the brokers' advertised addresses.
func (p *Platform) BrokerAddrs() string {
	s := ""
	for i, b := range p.Brokers {
		if i > 0 {
			s += ","
		}
		s += b.Advertised
	}
	return s
}

// Run starts the platform, calls onReady once every broker serves, and runs until ctx
// ends; then it stops the brokers (gracefully: flush, deregister), the S3 store and etcd.
func Run(ctx context.Context, opts Options, onReady func(*Platform)) error {
	if opts.Brokers <= 0 {
		opts.Brokers = 1
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Clean {
		if err := os.RemoveAll(opts.Dir); err != nil {
			return fmt.Errorf("clean %s: %w", opts.Dir, err)
		}
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", opts.Dir, err)
	}

	etcd, etcdEndpoint, err := startEtcd(opts)
	if err != nil {
		return err
	}
	defer etcd.Close()

	s3Endpoint, stopS3, err := startS3(opts)
	if err != nil {
		return err
	}
	defer stopS3()

	p := &Platform{EtcdEndpoint: etcdEndpoint, S3Endpoint: s3Endpoint, Brokers: make([]app.Ready, opts.Brokers)}
	brokerCtx, stopBrokers := context.WithCancel(context.Background())
	defer stopBrokers()
	var wg sync.WaitGroup
	errs := make(chan error, opts.Brokers)
	ready := make(chan struct{}, opts.Brokers)
	for i := 0; i < opts.Brokers; i++ {
		cfg, err := brokerConfig(opts, i, etcdEndpoint, s3Endpoint)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := app.Run(brokerCtx, cfg, app.Options{Logger: opts.Logger, OnReady: func(r app.Ready) {
				p.Brokers[i] = r
				ready <- struct{}{}
			}})
			if err != nil {
				errs <- fmt.Errorf("broker %d: %w", i, err)
			}
		}()
	}
	stopAll := func() error {
		stopBrokers()
		wg.Wait()
		close(errs)
		var all []error
		for err := range errs {
			all = append(all, err)
		}
		return errors.Join(all...)
	}
	for n := 0; n < opts.Brokers; n++ {
		select {
		case <-ready:
		case err := <-errs:
			return errors.Join(err, stopAll())
		case <-ctx.Done():
			return stopAll()
		}
	}
	proxyErr := make(chan error, 1)
	stopProxy := func() error { return nil }
	if opts.Proxy {
		proxyCtx, cancelProxy := context.WithCancel(context.Background())
		proxyReady := make(chan proxyapp.Ready, 1)
		cfg, err := proxyConfig(opts, etcdEndpoint)
		if err != nil {
			cancelProxy()
			return errors.Join(err, stopAll())
		}
		proxyDone := make(chan error, 1)
		go func() {
			err := proxyapp.Run(proxyCtx, cfg, proxyapp.Options{Logger: opts.Logger, OnReady: func(r proxyapp.Ready) { proxyReady <- r }})
			proxyDone <- err
			if err != nil {
				proxyErr <- fmt.Errorf("proxy: %w", err)
			}
		}()
		stopProxy = func() error {
			cancelProxy()
			return <-proxyDone
		}
		select {
		case r := <-proxyReady:
			p.Proxy = &r
		case err := <-proxyErr:
			cancelProxy()
			return errors.Join(err, stopAll())
		case <-ctx.Done():
			return errors.Join(stopProxy(), stopAll())
		}
	}
	console, stopConsole, err := startConsole(ctx, opts, etcdEndpoint)
	if err != nil {
		return errors.Join(err, stopAll())
	}
	p.Console = console
	stopEverything := stopAll
	stopAll = func() error { return errors.Join(stopConsole(), stopEverything()) }
	printBanner(opts.Out, p, opts.Dir)
	printConsoleBanner(opts.Out, console)
	if onReady != nil {
		onReady(p)
	}
	select {
	case <-ctx.Done():
	case err := <-errs:
		return errors.Join(err, stopProxy(), stopAll())
	case err := <-proxyErr:
		return errors.Join(err, stopAll())
	}
	if err := stopProxy(); err != nil {
		return errors.Join(err, stopAll())
	}
	fmt.Fprintln(opts.Out, "stopping: brokers flush and deregister, then S3 and etcd stop")
	return stopAll()
}

func brokerConfig(opts Options, i int, etcdEndpoint, s3Endpoint string) (*config.Broker, error) {
	port := func(offset int) string {
		if opts.KafkaPort == 0 {
			return "0"
		}
		if opts.Proxy {
			offset += 2 // the proxy takes KafkaPort and KafkaPort+1
		}
		return strconv.Itoa(opts.KafkaPort + 2*i + offset)
	}
	env := map[string]string{
		"KAFSCALE_BROKER_ID":            strconv.Itoa(i),
		"KAFSCALE_BROKER_ADDR":          net.JoinHostPort(opts.Host, port(0)),
		"KAFSCALE_BROKER_HOST":          opts.Host,
		"KAFSCALE_METRICS_ADDR":         net.JoinHostPort(opts.Host, port(1)),
		"KAFSCALE_ETCD_ENDPOINTS":       etcdEndpoint,
		"KAFSCALE_S3_BUCKET":            Bucket,
		"KAFSCALE_S3_ENDPOINT":          s3Endpoint,
		"KAFSCALE_S3_PATH_STYLE":        "true",
		"KAFSCALE_S3_ACCESS_KEY":        "local",
		"KAFSCALE_S3_SECRET_KEY":        "local",
		"KAFSCALE_SHUTDOWN_TIMEOUT_SEC": "10",
		// A single machine restarts quickly; a short lease moves leadership off a broker
		// that was killed without deregistering within seconds.
		"KAFSCALE_BROKER_LEASE_TTL_SEC": "3",
	}
	if opts.KafkaPort != 0 {
		env["KAFSCALE_BROKER_PORT"] = port(0)
	}
	for k, v := range opts.Env {
		env[k] = v
	}
	cfg, err := config.Parse(func(name string) (string, bool) { v, ok := env[name]; return v, ok })
	if err != nil {
		return nil, fmt.Errorf("broker %d: %w", i, err)
	}
	return cfg, nil
}

// proxyConfig is the proxy's configuration: listening on KafkaPort and advertising it,
// following the local etcd. KAFSCALE_PROXY_* settings in Env apply too.
func proxyConfig(opts Options, etcdEndpoint string) (*proxyconfig.Proxy, error) {
	port := func(offset int) string {
		if opts.KafkaPort == 0 {
			return "0"
		}
		return strconv.Itoa(opts.KafkaPort + offset)
	}
	env := map[string]string{}
	for k, v := range opts.Env {
		env[k] = v
	}
	env["KAFSCALE_PROXY_LISTEN_ADDR"] = net.JoinHostPort(opts.Host, port(0))
	env["KAFSCALE_PROXY_METRICS_ADDR"] = net.JoinHostPort(opts.Host, port(1))
	env["KAFSCALE_PROXY_ETCD_ENDPOINTS"] = etcdEndpoint
	env["KAFSCALE_PROXY_ADVERTISED_HOST"] = opts.Host
	env["KAFSCALE_PROXY_SHUTDOWN_GRACE_SEC"] = "5"
	if opts.KafkaPort == 0 {
		// A free port, picked here: the proxy must advertise the port it listens on.
		free := strconv.Itoa(freePort(opts.Host))
		env["KAFSCALE_PROXY_LISTEN_ADDR"] = net.JoinHostPort(opts.Host, free)
	}
	cfg, err := proxyconfig.Parse(func(name string) (string, bool) { v, ok := env[name]; return v, ok })
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	return cfg, nil
}

func startEtcd(opts Options) (*embed.Etcd, string, error) {
	clientURL := url.URL{Scheme: "http", Host: net.JoinHostPort(opts.Host, strconv.Itoa(opts.EtcdPort))}
	if opts.EtcdPort == 0 {
		clientURL.Host = net.JoinHostPort(opts.Host, strconv.Itoa(freePort(opts.Host)))
	}
	peerURL := url.URL{Scheme: "http", Host: net.JoinHostPort(opts.Host, strconv.Itoa(freePort(opts.Host)))}
	cfg := embed.NewConfig()
	cfg.Name = "local"
	cfg.Dir = filepath.Join(opts.Dir, "etcd")
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{filepath.Join(opts.Dir, "etcd.log")}
	cfg.AutoCompactionMode = "periodic"
	cfg.AutoCompactionRetention = "1h"
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("start embedded etcd on %s (data in %s): %w", clientURL.Host, cfg.Dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, "", fmt.Errorf("embedded etcd: %w", err)
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, "", errors.New("embedded etcd did not become ready within 60s; see " + filepath.Join(opts.Dir, "etcd.log"))
	}
	return e, clientURL.String(), nil
}

func startS3(opts Options) (string, func(), error) {
	path := filepath.Join(opts.Dir, "s3.bolt")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return "", nil, fmt.Errorf("open the local S3 store %s (another `make run` holding it?): %w", path, err)
	}
	backend := s3bolt.New(db)
	if err := backend.CreateBucket(Bucket); err != nil && !gofakes3.HasErrorCode(err, gofakes3.ErrBucketAlreadyExists) {
		db.Close()
		return "", nil, fmt.Errorf("create bucket %s: %w", Bucket, err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(opts.Host, strconv.Itoa(opts.S3Port)))
	if err != nil {
		db.Close()
		return "", nil, fmt.Errorf("listen for the local S3 store: %w", err)
	}
	srv := &http.Server{Handler: gofakes3.New(backend, gofakes3.WithAutoBucket(true)).Server(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		db.Close()
	}
	return "http://" + ln.Addr().String(), stop, nil
}

func freePort(host string) int {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func printBanner(w io.Writer, p *Platform, dir string) {
	bootstrap := p.Bootstrap()
	fmt.Fprintf(w, `
KafScale local platform is up (%d broker(s), data in %s)

  bootstrap servers : %s
  etcd              : %s
  S3 (bucket %s) : %s
`, len(p.Brokers), dir, bootstrap, p.EtcdEndpoint, Bucket, p.S3Endpoint)
	if p.Proxy != nil {
		fmt.Fprintf(w, "  proxy metrics     : http://%s/metrics\n  brokers (direct)  : %s\n", p.Proxy.MetricsAddr, p.BrokerAddrs())
	}
	for _, b := range p.Brokers {
		fmt.Fprintf(w, "  broker %d metrics  : http://%s/metrics\n", b.NodeID, b.MetricsAddr)
	}
	fmt.Fprintf(w, `
Try it with kcat:

  echo "hello kafscale" | kcat -b %s -P -t demo
  kcat -b %s -C -t demo -o beginning -e

Ctrl-C stops everything; data stays in %s (make run CLEAN=1 starts afresh).
`, bootstrap, bootstrap, dir)
}
