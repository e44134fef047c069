package server

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// kafscale_produce_rps averages over KAFSCALE_THROUGHPUT_WINDOW_SEC: 30 produces in the last
// complete seconds read 3/s over a 10 s window and 0.5/s over the default 60 s.
func TestThroughputWindow(t *testing.T) {
	for _, tc := range []struct {
		window time.Duration
		want   float64
	}{{10 * time.Second, 3}, {0, 0.5}} {
		reg := prometheus.NewRegistry()
		m := NewMetrics(reg, tc.window)
		now := time.Unix(1_000_000, 0)
		clock := func() time.Time { return now }
		m.produceRate.now = clock
		for i := 0; i < 30; i++ {
			m.produceRate.add(1)
			if i%10 == 9 {
				now = now.Add(time.Second)
			}
		}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, mf := range mfs {
			if mf.GetName() != "kafscale_produce_rps" {
				continue
			}
			found = true
			if got := mf.GetMetric()[0].GetGauge().GetValue(); got != tc.want {
				t.Errorf("window %s: kafscale_produce_rps %g, want %g", tc.window, got, tc.want)
			}
			if !strings.Contains(mf.GetHelp(), "KAFSCALE_THROUGHPUT_WINDOW_SEC") {
				t.Errorf("help %q does not name the setting", mf.GetHelp())
			}
		}
		if !found {
			t.Fatal("kafscale_produce_rps not registered")
		}
	}
}
