// Command broker is the KafScale broker: a stateless Kafka-protocol server whose log lives
// in S3 and whose metadata lives in etcd. It is configured entirely by KAFSCALE_* environment
// variables (docs/runtime-settings.md) and drains gracefully on SIGTERM.
//
// `broker local [-brokers N] [-clean]` instead runs a whole local platform in one process
// (embedded etcd, an S3 store on disk, N brokers): what `make run` starts.
//
// `broker drain-wait [-timeout 25s]` is the broker pod's preStop hook: it waits, bounded,
// until the broker in the same pod reports drained on its control service
// (KAFSCALE_CONTROL_ADDR), which the operator drains when the pod starts terminating.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/kafscale/kafscale/broker/app"
	"github.com/kafscale/kafscale/broker/config"
	"github.com/kafscale/kafscale/broker/control"
	"github.com/kafscale/kafscale/broker/local"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "local" {
		// `broker local`: embedded etcd, S3 store and brokers in this process (make run).
		os.Exit(local.Main(os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "drain-wait" {
		os.Exit(drainWait(os.Args[2:], os.Stderr))
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
	if limit, ok := memoryLimit(cfg.Storage.CacheBytes, os.Getenv("GOMEMLIMIT")); ok {
		debug.SetMemoryLimit(limit)
		log.Debug("Go memory limit set from KAFSCALE_CACHE_BYTES (GOMEMLIMIT unset)", "bytes", limit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	opts := app.Options{Logger: log}
	if cfg.TraceKafka {
		// Tracing shows its lines even when KAFSCALE_LOG_LEVEL hides info lines.
		opts.TraceLogger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	if err := app.Run(ctx, cfg, opts); err != nil {
		var startup *app.StartupError
		if errors.As(err, &startup) {
			log.Error("broker did not start; check that etcd and S3 are reachable with the configured settings", "err", err)
		} else {
			log.Error("broker stopped with an error", "err", err)
		}
		os.Exit(1)
	}
}

// memoryHeadroom is what a broker keeps alive besides its read cache under load, plus room
// for garbage: free request frames kept for reuse (≤ 8 MiB), request frames of 64 KiB or
// less, fetch responses being written, clients, goroutines. Produce buffers, flushes in flight
// and larger request frames reserve their room inside the cache's bound.
//
// Every produced byte is a new buffer that becomes garbage when the cache evicts it, so the
// collector runs about once per headroom's worth of produced bytes: a smaller headroom costs
// CPU per produced byte (more collections, and pages the runtime returned to the kernel
// faulted in again), a larger one memory. This one must keep the peak RSS inside the cache +
// 150 MiB budget (docs/benchmarks.md has the measurements behind the choice).
const memoryHeadroom = 96 << 20

// memoryLimit is the Go runtime's soft memory limit for a broker whose read cache holds
// cacheBytes: the cache plus memoryHeadroom, so garbage (chunks evicted from the cache,
// responses written) is collected before the heap grows to twice what is alive, as the
// default GOGC would let it. GOMEMLIMIT, when set, wins (ok is false).
func memoryLimit(cacheBytes int64, gomemlimit string) (int64, bool) {
	if gomemlimit != "" {
		return 0, false
	}
	return max(cacheBytes, 0) + memoryHeadroom, true
}

// drainWait polls the local control service until the broker is drained. It exits 0 once
// drained, 1 when the timeout passes first (the kubelet then records a FailedPreStopHook
// event and sends SIGTERM, whose own drain follows), 2 on bad usage.
func drainWait(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("drain-wait", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 25*time.Second, "longest wait for the drain; keep it below the pod's terminationGracePeriodSeconds minus KAFSCALE_SHUTDOWN_TIMEOUT_SEC")
	interval := fs.Duration("interval", 500*time.Millisecond, "how often the control service is asked")
	addr := fs.String("addr", os.Getenv("KAFSCALE_CONTROL_ADDR"), "control service address (default KAFSCALE_CONTROL_ADDR)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *addr == "" {
		fmt.Fprintln(stderr, "kafscale broker drain-wait: no control address: set KAFSCALE_CONTROL_ADDR (the broker's control service) or pass -addr")
		return 2
	}
	cli, err := control.Dial(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "kafscale broker drain-wait: %v\n", err)
		return 2
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	start := time.Now()
	st, err := cli.WaitDrained(ctx, *interval)
	if err != nil {
		fmt.Fprintf(stderr, "kafscale broker drain-wait: %v after %s; SIGTERM drains the broker itself\n", err, time.Since(start).Round(time.Millisecond))
		return 1
	}
	fmt.Fprintf(stderr, "kafscale broker drain-wait: broker %d drained (waited %s)\n", st.NodeId, time.Since(start).Round(time.Millisecond))
	return 0
}
