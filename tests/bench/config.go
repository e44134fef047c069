package bench

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// Config sizes a run. FromEnv reads it from BENCH_* variables (docs/benchmarks.md); Smoke is
// the tiny run of the integration test.
type Config struct {
	// Duration is the measured time of each throughput and ceiling run (BENCH_DURATION).
	Duration time.Duration
	// Warmup runs before each produce measurement starts (BENCH_WARMUP).
	Warmup time.Duration
	// LatencyDuration is how long the fixed-rate latency runs send (BENCH_LATENCY_DURATION).
	LatencyDuration time.Duration
	// BacklogBytes is the payload produced and then read back by the catch-up run
	// (BENCH_BACKLOG_BYTES).
	BacklogBytes int64
	// BacklogRecordBytes is the record size of the backlog (BENCH_BACKLOG_RECORD_BYTES).
	BacklogRecordBytes int
	// SteadyBytesPerSec is the rate of the steady run that counts PUTs per flush interval
	// (BENCH_STEADY_BYTES_PER_SEC).
	SteadyBytesPerSec float64
	// PutParallelism overrides the concurrent S3 PUTs the PUT ceiling uses
	// (BENCH_PUT_PARALLELISM); 0 means the broker's own (BrokerPutParallelism).
	PutParallelism int
	// GetParallelism overrides the concurrent S3 GETs the GET ceiling uses
	// (BENCH_GET_PARALLELISM); 0 means the broker's own (BrokerGetParallelism).
	GetParallelism int
	// Producers is how many franz-go clients, each with its own connection, share the load
	// of the produce and latency runs (BENCH_PRODUCERS, default 4): one idempotent client
	// keeps at most five requests in flight, about one segment, which cannot keep the
	// broker's parallel uploads busy. With more than one, a single-client run of 1 KiB
	// records on one partition is reported too.
	Producers int
	// Peer runs the kfake peer's workloads too (BENCH_PEER, default true).
	Peer bool
	// Proxy runs the 1 KiB produce runs and the consumer catch-up again through one proxy in
	// front of the broker (BENCH_PROXY, default true), reported next to the direct figures.
	Proxy bool
	// Profile collects pprof profiles of the broker (BENCH_PROFILE, default true).
	Profile bool
	// OutDir receives profiles, logs and the report (BENCH_OUT, default bench-out).
	OutDir string
	// BrokerEnv are extra KAFSCALE_* settings of the broker, taken from the environment.
	BrokerEnv []string
}

// Default is what `make bench` runs: about ten minutes on the 2-core reference machine.
func Default() Config {
	return Config{
		Duration:           15 * time.Second,
		Warmup:             3 * time.Second,
		LatencyDuration:    30 * time.Second,
		BacklogBytes:       1 << 30,
		BacklogRecordBytes: 16 << 10,
		SteadyBytesPerSec:  1e6,
		Producers:          4,
		Peer:               true,
		Proxy:              true,
		Profile:            true,
		OutDir:             "bench-out",
	}
}

// Smoke is a run of a few seconds and a few MiB: it proves the harness works, not how fast
// anything is.
func Smoke(outDir string) Config {
	c := Default()
	c.Duration = time.Second
	c.Warmup = 500 * time.Millisecond
	c.LatencyDuration = 2 * time.Second
	c.BacklogBytes = 8 << 20
	c.SteadyBytesPerSec = 256 << 10
	c.OutDir = outDir
	return c
}

// FromEnv starts from Default and applies the BENCH_* variables.
func FromEnv() (Config, error) {
	c := Default()
	var errs []error
	dur := func(name string, d *time.Duration) {
		if v := os.Getenv(name); v != "" {
			x, err := time.ParseDuration(v)
			if err != nil || x <= 0 {
				errs = append(errs, fmt.Errorf("%s=%q: want a positive duration such as 15s", name, v))
				return
			}
			*d = x
		}
	}
	num := func(name string, set func(int64)) {
		if v := os.Getenv(name); v != "" {
			x, err := strconv.ParseInt(v, 10, 64)
			if err != nil || x < 0 {
				errs = append(errs, fmt.Errorf("%s=%q: want a whole number >= 0", name, v))
				return
			}
			set(x)
		}
	}
	boolean := func(name string, b *bool) {
		if v := os.Getenv(name); v != "" {
			x, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: want true or false", name, v))
				return
			}
			*b = x
		}
	}
	dur("BENCH_DURATION", &c.Duration)
	dur("BENCH_WARMUP", &c.Warmup)
	dur("BENCH_LATENCY_DURATION", &c.LatencyDuration)
	num("BENCH_BACKLOG_BYTES", func(x int64) { c.BacklogBytes = x })
	num("BENCH_BACKLOG_RECORD_BYTES", func(x int64) { c.BacklogRecordBytes = int(x) })
	num("BENCH_STEADY_BYTES_PER_SEC", func(x int64) { c.SteadyBytesPerSec = float64(x) })
	num("BENCH_PUT_PARALLELISM", func(x int64) { c.PutParallelism = int(x) })
	num("BENCH_PRODUCERS", func(x int64) { c.Producers = int(x) })
	num("BENCH_GET_PARALLELISM", func(x int64) { c.GetParallelism = int(x) })
	boolean("BENCH_PEER", &c.Peer)
	boolean("BENCH_PROXY", &c.Proxy)
	boolean("BENCH_PROFILE", &c.Profile)
	if v := os.Getenv("BENCH_OUT"); v != "" {
		c.OutDir = v
	}
	if c.Producers < 1 {
		errs = append(errs, fmt.Errorf("BENCH_PRODUCERS must be at least 1"))
	}
	if c.BacklogBytes < 1<<20 || c.BacklogRecordBytes < 16 || c.SteadyBytesPerSec <= 0 {
		errs = append(errs, fmt.Errorf("BENCH_BACKLOG_BYTES must be at least 1 MiB, BENCH_BACKLOG_RECORD_BYTES at least 16, BENCH_STEADY_BYTES_PER_SEC above 0"))
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("bad benchmark settings: %v", errs)
	}
	return c, nil
}
