// Command operator runs the KafScale operator: it turns KafscaleClusters and KafscaleTopics
// in its namespace into brokers and metadata. Configuration: docs/runtime-settings.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/go-logr/logr"
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
