package storage

import (
	"sync"
	"time"

	"github.com/kafscale/kafscale/broker/optcheck"
)

// HealthState is the S3 health the broker gates on, exported as kafscale_s3_health_state.
type HealthState int32

const (
	// Healthy: latency and error rate are under the degraded thresholds.
	Healthy HealthState = 0
	// Degraded: slow or failing sometimes; produce still works.
	Degraded HealthState = 1
	// Unavailable: produce fails fast with KAFKA_STORAGE_ERROR; cached fetches are served.
	Unavailable HealthState = 2
)

func (s HealthState) String() string {
	switch s {
	case Healthy:
		return "healthy"
	case Degraded:
		return "degraded"
	case Unavailable:
		return "unavailable"
	}
	return "unknown"
}

// HealthOptions are the thresholds of the health tracker. The broker's defaults live in
// broker/config; NewHealth checks the options (Validate) and fills nothing in.
type HealthOptions struct {
	// Window is how far back samples count (KAFSCALE_S3_HEALTH_WINDOW_SEC).
	Window time.Duration
	// LatencyWarn is the mean latency at which S3 is degraded (KAFSCALE_S3_LATENCY_WARN_MS).
	LatencyWarn time.Duration
	// LatencyCrit is the mean latency at which S3 is unavailable (KAFSCALE_S3_LATENCY_CRIT_MS).
	LatencyCrit time.Duration
	// ErrorRateWarn is the error fraction at which S3 is degraded (KAFSCALE_S3_ERROR_RATE_WARN).
	ErrorRateWarn float64
	// ErrorRateCrit is the error fraction at which S3 is unavailable (KAFSCALE_S3_ERROR_RATE_CRIT).
	ErrorRateCrit float64
	// FailuresUnavailable consecutive failures make S3 unavailable at once, whatever the
	// window says (KAFSCALE_S3_FAILURES_UNAVAILABLE).
	FailuresUnavailable int
	// ProbeInterval is how often a background probe tests S3 while it is not healthy
	// (KAFSCALE_S3_PROBE_INTERVAL_MS).
	ProbeInterval time.Duration
}

// Validate reports the thresholds that cannot work, all of them.
func (o HealthOptions) Validate() error {
	p := optcheck.New("storage")
	optcheck.Positive(p, "Health.Window", o.Window)
	optcheck.Positive(p, "Health.LatencyWarn", o.LatencyWarn)
	optcheck.Positive(p, "Health.LatencyCrit", o.LatencyCrit)
	optcheck.Positive(p, "Health.ErrorRateWarn", o.ErrorRateWarn)
	optcheck.Positive(p, "Health.ErrorRateCrit", o.ErrorRateCrit)
	optcheck.Positive(p, "Health.FailuresUnavailable", o.FailuresUnavailable)
	optcheck.Positive(p, "Health.ProbeInterval", o.ProbeInterval)
	return p.Err()
}

// minSamples is how many samples the rates need before they count.
const minSamples = 5

// recoverAfter consecutive successes after a failure clear the window, so recovery does not
// wait for old failures to age out.
const recoverAfter = 3

type sample struct {
	at      time.Time
	latency time.Duration
	failed  bool
}

// Health tracks S3 latency and errors over a sliding window and derives a HealthState.
// It is safe for concurrent use.
type Health struct {
	opts HealthOptions
	now  func() time.Time

	mu         sync.Mutex
	samples    []sample // oldest first, pruned to opts.Window
	consecFail int
	consecOK   int
}

// NewHealth returns a tracker; now is the clock (time.Now when nil).
func NewHealth(opts HealthOptions, now func() time.Time) (*Health, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Health{opts: opts, now: now}, nil
}

// Observe records one S3 call.
func (h *Health) Observe(latency time.Duration, failed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if failed {
		h.consecFail++
		h.consecOK = 0
	} else if latency >= h.opts.LatencyWarn {
		h.consecFail = 0
		h.consecOK = 0
	} else {
		h.consecFail = 0
		h.consecOK++
		// A run of successes after trouble forgets the trouble, so recovery does not wait
		// for old failures to age out of the window.
		if h.consecOK == recoverAfter && h.troubledLocked() {
			h.samples = h.samples[:0]
		}
	}
	h.samples = append(h.samples, sample{at: h.now(), latency: latency, failed: failed})
	h.pruneLocked()
}

func (h *Health) troubledLocked() bool {
	for _, s := range h.samples {
		if s.failed || s.latency >= h.opts.LatencyWarn {
			return true
		}
	}
	return false
}

func (h *Health) pruneLocked() {
	cut := h.now().Add(-h.opts.Window)
	i := 0
	for i < len(h.samples) && h.samples[i].at.Before(cut) {
		i++
	}
	if i > 0 {
		h.samples = append(h.samples[:0], h.samples[i:]...)
	}
}

// State is the current health.
func (h *Health) State() HealthState {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pruneLocked()
	if h.consecFail >= h.opts.FailuresUnavailable {
		return Unavailable
	}
	n := len(h.samples)
	if n == 0 {
		return Healthy
	}
	var failed int
	var total time.Duration
	for _, s := range h.samples {
		if s.failed {
			failed++
		}
		total += s.latency
	}
	mean := total / time.Duration(n)
	state := Healthy
	if n >= minSamples {
		rate := float64(failed) / float64(n)
		switch {
		case rate >= h.opts.ErrorRateCrit:
			return Unavailable
		case rate >= h.opts.ErrorRateWarn:
			state = Degraded
		}
	} else if failed > 0 {
		state = Degraded
	}
	switch {
	case mean >= h.opts.LatencyCrit && n >= minSamples:
		return Unavailable
	case mean >= h.opts.LatencyWarn:
		state = Degraded
	}
	return state
}

// MeanLatency is the mean latency of the S3 calls in the window (what LatencyWarn and
// LatencyCrit are compared with), 0 without calls in it.
func (h *Health) MeanLatency() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pruneLocked()
	if len(h.samples) == 0 {
		return 0
	}
	var total time.Duration
	for _, s := range h.samples {
		total += s.latency
	}
	return total / time.Duration(len(h.samples))
}
