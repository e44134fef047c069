// Command console is the KafScale operations console: a web UI and JSON API showing the
// cluster's brokers, topics, consumer groups, lag, throughput and records, read-only. It is
// configured by KAFSCALE_CONSOLE_* and KAFSCALE_UI_* environment variables
// (docs/runtime-settings.md) and stops on SIGTERM.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/kafscale/kafscale/console/app"
	"github.com/kafscale/kafscale/console/config"
)

func main() {
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintf(os.Stderr, "kafscale console: %v\nSee docs/runtime-settings.md for every variable.\n", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	for _, name := range config.Unknown(os.Environ()) {
		log.Warn("unknown variable ignored (typo?)", "name", name)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := app.Run(ctx, cfg, app.Options{Logger: log}); err != nil {
		log.Error("console stopped with an error", "err", err)
		os.Exit(1)
	}
}
