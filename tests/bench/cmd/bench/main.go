// Command bench is `make bench`: it runs the measurement harness of tests/bench (ceilings,
// the broker, the kfake peer), prints the report and writes it into the generated section
// of docs/benchmarks.md. Settings come from BENCH_* variables (docs/benchmarks.md); any
// KAFSCALE_* broker setting in the environment is passed to the broker.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/kafscale/kafscale/broker/config"
	"github.com/kafscale/kafscale/tests/bench"
)

func main() {
	doc := flag.String("doc", "docs/benchmarks.md", "Markdown file whose generated section receives the report (empty: none)")
	command := flag.String("command", "make bench", "the command to quote in the report")
	flag.Parse()
	log.SetFlags(log.Ltime)
	cfg, err := bench.FromEnv()
	if err != nil {
		log.Fatal(err)
	}
	known := map[string]bool{}
	for _, n := range config.Names() {
		known[n] = true
	}
	var settings []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if known[name] && !harnessOwned(name) {
			cfg.BrokerEnv = append(cfg.BrokerEnv, kv)
			settings = append(settings, kv)
		}
		if strings.HasPrefix(name, "BENCH_") {
			settings = append(settings, kv)
		}
	}
	sort.Strings(settings)
	cmd := strings.TrimSpace(strings.Join(settings, " ") + " " + *command)

	tmp, err := os.MkdirTemp("", "kafscale-bench-")
	if err != nil {
		log.Fatal(err)
	}
	free, err := diskFree(tmp)
	if err != nil {
		log.Fatal(err)
	}
	if why := lowDisk(tmp, free); why != "" {
		_ = os.RemoveAll(tmp)
		log.Fatalf("bench not started: %s", why)
	}
	log.Printf("S3 and etcd data go to %s (%.1f GiB free; a default run writes about 20 GiB)", tmp, float64(free)/(1<<30))
	tb := &bench.ProgramTB{Dir: tmp}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	ctx, cancel := context.WithCancelCause(ctx)
	go watchDisk(ctx, tmp, 2*time.Second, diskFree, cancel)
	var rep *bench.Report
	err = tb.Run(func() error {
		var err error
		rep, err = bench.Run(ctx, tb, cfg)
		return err
	})
	cause := context.Cause(ctx)
	cancel(nil)
	stop()
	tb.Close()
	_ = os.RemoveAll(tmp)
	if err != nil {
		if cause != nil && !errors.Is(cause, context.Canceled) {
			log.Fatalf("bench stopped: %v (%v)", cause, err)
		}
		log.Fatalf("bench failed: %v", err)
	}
	rep.Command = cmd
	md := rep.Markdown()
	fmt.Println()
	fmt.Print(md)
	for _, p := range rep.Profiles {
		fmt.Printf("\n%s (%s):\n%s\n%s", p.Name, p.Path, p.Top, p.Cum)
	}
	if err := os.WriteFile(filepath.Join(cfg.OutDir, "report.md"), []byte(md), 0o644); err != nil {
		log.Fatal(err)
	}
	// Every figure, for comparing runs with a script (durations in nanoseconds).
	if js, err := json.MarshalIndent(rep, "", "  "); err == nil {
		_ = os.WriteFile(filepath.Join(cfg.OutDir, "report.json"), js, 0o644)
	}
	if *doc != "" {
		if err := bench.UpdateDoc(*doc, md); err != nil {
			log.Fatal(err)
		}
		log.Printf("report written to %s and %s", *doc, filepath.Join(cfg.OutDir, "report.md"))
	}
}

// harnessOwned names the broker settings the harness sets itself — where etcd and S3 are,
// credentials, addresses — which the environment must not override (and which would leak
// secrets into the report).
func harnessOwned(name string) bool {
	switch name {
	case "KAFSCALE_BROKER_ID", "KAFSCALE_BROKER_ADDR", "KAFSCALE_BROKER_HOST", "KAFSCALE_BROKER_PORT",
		"KAFSCALE_METRICS_ADDR", "KAFSCALE_PPROF":
		return true
	}
	for _, prefix := range []string{"KAFSCALE_ETCD_ENDPOINTS", "KAFSCALE_ETCD_USERNAME", "KAFSCALE_ETCD_PASSWORD",
		"KAFSCALE_S3_BUCKET", "KAFSCALE_S3_ENDPOINT", "KAFSCALE_S3_REGION", "KAFSCALE_S3_ACCESS_KEY",
		"KAFSCALE_S3_SECRET_KEY", "KAFSCALE_S3_SESSION_TOKEN", "KAFSCALE_S3_KMS_KEY_ID", "KAFSCALE_S3_PATH_STYLE",
		"KAFSCALE_S3_READ_"} {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}
