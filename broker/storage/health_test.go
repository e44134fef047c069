package storage

import (
	"strings"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestHealthTransitions(t *testing.T) {
	const fast, slow, verySlow = 10 * time.Millisecond, 700 * time.Millisecond, 3 * time.Second
	type step struct {
		latency time.Duration
		failed  bool
		advance time.Duration
		want    HealthState
	}
	ok := func(want HealthState) step { return step{latency: fast, want: want} }
	fail := func(want HealthState) step { return step{latency: fast, failed: true, want: want} }
	cases := []struct {
		name  string
		steps []step
	}{
		{"fast successes stay healthy", []step{ok(Healthy), ok(Healthy), ok(Healthy), ok(Healthy), ok(Healthy), ok(Healthy)}},
		{"one failure among few samples degrades", []step{ok(Healthy), fail(Degraded)}},
		{"consecutive failures make it unavailable", []step{ok(Healthy), ok(Healthy), fail(Degraded), fail(Degraded), fail(Unavailable)}},
		{"recovery after RecoverAfter successes", []step{
			fail(Degraded), fail(Degraded), fail(Unavailable), fail(Unavailable),
			ok(Unavailable), ok(Unavailable), ok(Healthy), ok(Healthy),
		}},
		{"error rate over warn degrades", []step{
			ok(Healthy), ok(Healthy), ok(Healthy), ok(Healthy), fail(Degraded), ok(Healthy),
		}},
		{"error rate over crit is unavailable even without a failure run", []step{
			fail(Degraded), ok(Degraded), fail(Degraded), ok(Degraded), fail(Unavailable), ok(Degraded),
		}},
		{"slow calls degrade", []step{{latency: slow, want: Degraded}, {latency: slow, want: Degraded}}},
		{"very slow calls are unavailable once there are enough samples", []step{
			{latency: verySlow, want: Degraded}, {latency: verySlow, want: Degraded}, {latency: verySlow, want: Degraded},
			{latency: verySlow, want: Degraded}, {latency: verySlow, want: Unavailable},
		}},
		{"failures age out of the window", []step{
			fail(Degraded), ok(Degraded), {latency: fast, advance: 2 * time.Minute, want: Healthy},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := &fakeClock{t: time.Unix(1_000_000, 0)}
			h := mustHealth(t, testHealthOptions(), clock.now)
			for i, s := range c.steps {
				clock.advance(s.advance + time.Second)
				h.Observe(s.latency, s.failed)
				if got := h.State(); got != s.want {
					t.Fatalf("step %d: state %v, want %v", i, got, s.want)
				}
			}
		})
	}
}

// testHealthOptions are the broker's default thresholds (broker/config).
func testHealthOptions() HealthOptions {
	return HealthOptions{
		Window: time.Minute, LatencyWarn: 500 * time.Millisecond, LatencyCrit: 2 * time.Second,
		ErrorRateWarn: 0.2, ErrorRateCrit: 0.6, FailuresUnavailable: 3, ProbeInterval: time.Second,
	}
}

func mustHealth(t *testing.T, o HealthOptions, now func() time.Time) *Health {
	t.Helper()
	h, err := NewHealth(o, now)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Thresholds left out are refused, each by name, rather than silently given a value.
func TestHealthOptionsValidated(t *testing.T) {
	_, err := NewHealth(HealthOptions{LatencyWarn: time.Second}, nil)
	if err == nil {
		t.Fatal("zero thresholds accepted")
	}
	for _, name := range []string{"Window", "LatencyCrit", "ErrorRateWarn", "ErrorRateCrit", "FailuresUnavailable", "ProbeInterval"} {
		if !strings.Contains(err.Error(), "Health."+name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
	if strings.Contains(err.Error(), "LatencyWarn") {
		t.Errorf("a set threshold was refused: %v", err)
	}
	if Healthy.String() != "healthy" || Degraded.String() != "degraded" || Unavailable.String() != "unavailable" {
		t.Fatal("state names")
	}
}
