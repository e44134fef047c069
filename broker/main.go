// Command broker is the KafScale broker: a stateless Kafka-protocol server whose log lives
// in S3 and whose metadata lives in etcd. It is configured entirely by KAFSCALE_* environment
// variables (docs/runtime-settings.md) and drains gracefully on SIGTERM.
//
// `broker local [-brokers N] [-clean]` instead runs a whole local platform in one process
// (embedded etcd, an S3 store on disk, N brokers): what `make run` starts.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/kafscale/kafscale/broker/app"
	"github.com/kafscale/kafscale/internal/config"
	"github.com/kafscale/kafscale/internal/local"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "local" {
		// `broker local`: embedded etcd, S3 store and brokers in this process (make run).
		os.Exit(local.Main(os.Args[2:], os.Stdout, os.Stderr))
	}
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintf(os.Stderr, "kafscale broker: %v\nSee docs/runtime-settings.md for every variable.\n", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	for _, name := range config.Unknown(os.Environ()) {
		log.Warn("unknown variable ignored (typo?)", "name", name)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := app.Run(ctx, cfg, app.Options{Logger: log}); err != nil {
		var startup *app.StartupError
		if errors.As(err, &startup) {
			log.Error("broker did not start; check that etcd and S3 are reachable with the configured settings", "err", err)
		} else {
			log.Error("broker stopped with an error", "err", err)
		}
		os.Exit(1)
	}
}
