// Command operator runs the KafScale operator: it turns KafscaleClusters and KafscaleTopics
// in its namespace into brokers and metadata. Configuration: docs/runtime-settings.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/kafscale/kafscale/operator/app"
	"github.com/kafscale/kafscale/operator/config"
	"github.com/kafscale/kafscale/operator/leader"
	"github.com/kafscale/kafscale/operator/snapshot"
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
	if len(os.Args) > 1 && os.Args[1] == "etcd-restore" {
		if err := etcdRestore(log, os.Args[2:]); err != nil {
			log.Error("etcd restore failed", "err", err)
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
	for _, m := range cfg.Moot {
		log.Info(m)
	}
	for _, name := range config.Unknown(os.Environ()) {
		log.Warn("unknown variable ignored (typo?)", "name", name)
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

// etcdRestore is the managed etcd members' init container: restore the newest snapshot into
// an empty data dir (see snapshot.Restore), its result as JSON on stdout.
func etcdRestore(log *slog.Logger, args []string) error {
	r, err := snapshot.ParseRestore(args, os.LookupEnv)
	if err != nil {
		return err
	}
	r.Log = log
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	res, err := r.Run(ctx)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
