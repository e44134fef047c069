package local

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Main is `broker local [flags]`, what `make run` runs. It returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("local", flag.ContinueOnError)
	fs.SetOutput(stderr)
	opts := Options{Out: stdout}
	fs.StringVar(&opts.Dir, "dir", ".kafscale", "directory for etcd data and the S3 store; survives restarts")
	fs.BoolVar(&opts.Clean, "clean", false, "remove -dir first (a fresh cluster)")
	fs.IntVar(&opts.Brokers, "brokers", 1, "number of brokers")
	fs.StringVar(&opts.Host, "host", "127.0.0.1", "address to listen on and advertise")
	fs.BoolVar(&opts.Proxy, "proxy", true, "run the Kafka-aware proxy in front of the brokers, as the bootstrap address")
	fs.IntVar(&opts.KafkaPort, "kafka-port", 9092, "the proxy's Kafka port (port+1: its metrics); broker i uses port+2+2i, and port+3+2i for metrics (without the proxy: port+2i and port+2i+1) (0: free ports)")
	fs.IntVar(&opts.EtcdPort, "etcd-port", 12379, "embedded etcd client port (0: a free port)")
	fs.IntVar(&opts.S3Port, "s3-port", 19000, "local S3 store port (0: a free port)")
	fs.IntVar(&opts.ConsolePort, "console-port", 8080, "operations console HTTP port (0: a free port)")
	logLevel := fs.String("log-level", "warn", "broker log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.ToUpper(*logLevel))); err != nil {
		fmt.Fprintf(stderr, "-log-level %q: want debug, info, warn or error\n", *logLevel)
		return 2
	}
	opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	// KAFSCALE_* settings in the environment apply to the local brokers too (except those
	// the platform sets itself: addresses, etcd, S3).
	opts.Env = map[string]string{}
	for _, kv := range os.Environ() {
		if name, value, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(name, "KAFSCALE_") && !platformOwned[name] {
			opts.Env[name] = value
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, opts, nil); err != nil {
		fmt.Fprintf(stderr, "kafscale local: %v\n", err)
		return 1
	}
	return 0
}

var platformOwned = map[string]bool{
	"KAFSCALE_BROKER_ID": true, "KAFSCALE_BROKER_ADDR": true, "KAFSCALE_BROKER_HOST": true,
	"KAFSCALE_BROKER_PORT": true, "KAFSCALE_METRICS_ADDR": true, "KAFSCALE_ETCD_ENDPOINTS": true,
	"KAFSCALE_S3_BUCKET": true, "KAFSCALE_S3_ENDPOINT": true, "KAFSCALE_S3_PATH_STYLE": true,
	"KAFSCALE_S3_ACCESS_KEY": true, "KAFSCALE_S3_SECRET_KEY": true,
	"KAFSCALE_PROXY_LISTEN_ADDR": true, "KAFSCALE_PROXY_METRICS_ADDR": true, "KAFSCALE_PROXY_ETCD_ENDPOINTS": true,
	"KAFSCALE_PROXY_ADVERTISED_HOST": true, "KAFSCALE_PROXY_ADVERTISED_PORT": true,
}
