// Command operator runs the KafScale operator: it turns KafscaleClusters and KafscaleTopics
// in its namespace into brokers and metadata. Configuration: docs/runtime-settings.md.
package main

import (
	"encoding/json"
	"time"

	"context"
	"errors"
	"fmt"
	"github.com/go-logr/logr"
	"github.com/kafscale/kafscale/operator/snapshot"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/kafscale/kafscale/operator/app"
	"github.com/kafscale/kafscale/operator/config"
	"github.com/kafscale/kafscale/operator/leader"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))
	if len(os.Args) > 1 && os.Args[1] == "etcd-snapshot" {
		if err := etcdSnapshot(); err != nil {
			log.Error("etcd snapshot failed", "err", err)
			os.Exit(1)
		}
		return
	}
	if err := run(log); err != nil {
		log.Error("operator stopped", "err", err)
		code := 1
		if errors.Is(err, leader.ErrLost) {
			code = 2 // restart and campaign again
		}
		os.Exit(code)
	}
}

func run(log *slog.Logger) error {
	cfg, err := config.Load()
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	rest, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubernetes client configuration: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return app.Run(ctx, app.Options{Config: cfg, RestConfig: rest, Logger: log})
}

// etcdSnapshot is the snapshot CronJob's command: one etcd snapshot to S3, its result as
// JSON on stdout.
func etcdSnapshot() error {
	job, err := snapshot.ParseJob(os.LookupEnv)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	res, err := job.Run(ctx)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
