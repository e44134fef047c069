package bench

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPercentilesNearestRank(t *testing.T) {
	for _, tc := range []struct {
		name           string
		n              int // samples 1..n ms, shuffled
		p50, p99, p999 time.Duration
	}{
		{"one", 1, 1 * time.Millisecond, 1 * time.Millisecond, 1 * time.Millisecond},
		{"hundred", 100, 50 * time.Millisecond, 99 * time.Millisecond, 100 * time.Millisecond},
		{"thousand", 1000, 500 * time.Millisecond, 990 * time.Millisecond, 999 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := make([]time.Duration, tc.n)
			for i := range s {
				s[i] = time.Duration((i*7919)%tc.n+1) * time.Millisecond
			}
			p := percentilesOf(s)
			if p.N != tc.n || p.P50 != tc.p50 || p.P99 != tc.p99 || p.P999 != tc.p999 || p.Max != time.Duration(tc.n)*time.Millisecond {
				t.Fatalf("percentiles = %+v, want p50 %s p99 %s p999 %s", p, tc.p50, tc.p99, tc.p999)
			}
		})
	}
	if p := percentilesOf(nil); p.N != 0 {
		t.Fatalf("empty sample: %+v", p)
	}
}

func TestReadProcOfSelf(t *testing.T) {
	s, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS <= 0 || s.PeakRSS < s.RSS || s.CPU < 0 {
		t.Fatalf("/proc/self = %+v", s)
	}
	busy, total, err := machineCPU()
	if err != nil || busy <= 0 || total < busy {
		t.Fatalf("machine CPU busy %s of %s: %v", busy, total, err)
	}
}

func TestUpdateDocReplacesOnlyTheGeneratedSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.md")
	doc := "# B\n\nhand written\n\n" + docBegin + "\nold table\n" + docEnd + "\n\nafter\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 { // idempotent
		if err := UpdateDoc(path, "new table\n"); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := os.ReadFile(path)
	want := "# B\n\nhand written\n\n" + docBegin + "\n\nnew table\n\n" + docEnd + "\n\nafter\n"
	if string(got) != want {
		t.Fatalf("doc =\n%s\nwant\n%s", got, want)
	}
	if err := os.WriteFile(path, []byte("no markers"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := UpdateDoc(path, "x"); err == nil || !strings.Contains(err.Error(), "generated section") {
		t.Fatalf("doc without markers: err = %v", err)
	}
}

func TestFromEnv(t *testing.T) {
	t.Setenv("BENCH_DURATION", "2s")
	t.Setenv("BENCH_BACKLOG_BYTES", "8388608")
	t.Setenv("BENCH_PEER", "false")
	c, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.Duration != 2*time.Second || c.BacklogBytes != 8<<20 || c.Peer || c.Warmup != Default().Warmup {
		t.Fatalf("config = %+v", c)
	}
	t.Setenv("BENCH_DURATION", "soon")
	t.Setenv("BENCH_GET_PARALLELISM", "-1")
	_, err = FromEnv()
	if err == nil || !strings.Contains(err.Error(), "BENCH_DURATION") || !strings.Contains(err.Error(), "BENCH_GET_PARALLELISM") {
		t.Fatalf("bad settings: err = %v, want both named", err)
	}
}

// TestHistDelta: a histogram's observations between two scrapes, its p99 bucket bound and
// the count beyond SlowBound, from Prometheus text-format bucket series.
func TestHistDelta(t *testing.T) {
	series := func(counts map[string]float64, total float64) Metrics {
		m := Metrics{"h_count": total}
		for le, n := range counts {
			m[`h_bucket{le="`+le+`"}`] = n
		}
		return m
	}
	a := series(map[string]float64{"0.04": 10, "0.16": 10, "0.32": 10, "+Inf": 10}, 10)
	// 200 more: 190 within 40 ms, 8 within 160 ms, 2 within 320 ms.
	b := series(map[string]float64{"0.04": 200, "0.16": 208, "0.32": 210, "+Inf": 210}, 210)
	h := histDelta(a, b, "h")
	if h.N != 200 || h.P99Bound != 0.16 || h.Slow != 2 {
		t.Fatalf("got %+v, want 200 observations, p99 within 0.16 s, 2 slow", h)
	}
	// Every new observation beyond the last finite bucket.
	c := series(map[string]float64{"0.04": 10, "0.16": 10, "0.32": 10, "+Inf": 15}, 15)
	if h := histDelta(a, c, "h"); h.N != 5 || !math.IsInf(h.P99Bound, 1) || h.Slow != 5 {
		t.Fatalf("got %+v, want 5 observations beyond the buckets", h)
	}
	if h := histDelta(a, a, "h"); h.N != 0 {
		t.Fatalf("no change: got %+v", h)
	}
}
