// Command proxy is the KafScale Kafka-aware proxy: one stable Kafka endpoint in front of the
// brokers. It follows the routing state in etcd, answers Metadata, FindCoordinator,
// DescribeCluster and ApiVersions with its own advertised endpoint, and routes every other
// request to the broker that owns it. It is configured by KAFSCALE_PROXY_* environment
// variables (docs/runtime-settings.md) and stops gracefully on SIGTERM.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/kafscale/kafscale/proxy/app"
	"github.com/kafscale/kafscale/proxy/config"
)

func main() {
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintf(os.Stderr, "kafscale proxy: %v\nSee docs/runtime-settings.md (Proxy) for every variable.\n", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	for _, name := range config.Unknown(os.Environ()) {
		log.Warn("unknown variable ignored (typo?)", "name", name)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := app.Run(ctx, cfg, app.Options{Logger: log}); err != nil {
		log.Error("proxy stopped with an error", "err", err)
		os.Exit(1)
	}
}
