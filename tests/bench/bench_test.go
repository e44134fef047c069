package bench_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kafscale/kafscale/tests/bench"
)

// The harness behind `make bench`, at a few MiB and about a second per run: every row of
// the report must be there with a sane value (throughput above zero, percentiles ordered,
// every latency record received, the objects in the bucket matching the broker's flush
// counter). It asserts nothing about speed.
func TestBenchSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := bench.Smoke(t.TempDir())
	rep, err := bench.Run(ctx, t, cfg)
	if err != nil {
		t.Fatalf("bench run: %v", err)
	}
	if err := rep.Validate(); err != nil {
		t.Fatalf("report:\n%s\nproblems:\n%v", rep.Markdown(), err)
	}
	md := rep.Markdown()
	for _, row := range []string{
		"loopback TCP", "S3 PUT ceiling", "S3 GET ceiling",
		"produce 1 KiB records, 1 partition(s)", "produce 1 KiB records, 64 partition(s)",
		"produce 16 KiB records, 1 partition(s)", "produce 16 KiB records, 64 partition(s)",
		"CPU-seconds per GiB produced", "S3 PUTs per GiB produced", "end-to-end latency",
		"S3 PUTs per flush interval", "backlog produce", "catch-up read", "CPU-seconds per GiB read",
		"produce 1 KiB records, 1 partition(s), 1 producer", "peak RSS during produce", "machine bound for catch-up",
		"peak RSS", "cores in use", "cross-check", "| target (issue #7)", "broker-produce-1k-1p-4c-cpu.pprof",
		"broker-produce-1k-64p-4c-cpu.pprof", "broker-catchup-cpu.pprof", "proxy-catchup-cpu.pprof",
		"| produce 1 KiB × 1, 4 producers |", "| produce 1 KiB × 64, 4 producers |", "| catch-up from S3, franz-go consumer |",
		"proxy CPU-s per GiB", "proxy peak RSS", "(issue #16) produce 1 KiB × 64, 4 producers through one proxy ≥ 0.8 × direct",
	} {
		if !strings.Contains(md, row) {
			t.Errorf("report lacks %q:\n%s", row, md)
		}
	}
	if n := strings.Count(md, "| PASS |") + strings.Count(md, "| MISS |"); n != 12 {
		t.Errorf("report has %d target verdicts, want 12 (9 of issue #7, 3 of the proxy):\n%s", n, md)
	}
	t.Logf("smoke report:\n%s", md)
}
