package auth

import (
	"sync"
	"time"
)

// Limiter bounds failed logins per key with a token bucket: burst failures at once, then one
// more per refill. A key with no token left is refused before its password is checked, so
// guessing goes no faster than the refill.
//
// The key is the client's address (X-Forwarded-For from a trusted Ingress, else the TCP
// peer), or, for a browser carrying a valid device cookie (it logged in before), that
// cookie. So an attacker who exhausts the budget of a shared address (every client behind an
// Ingress that is not trusted) does not lock out the people who used the console before:
// their browsers have their own budgets, which the attacker cannot forge.
type Limiter struct {
	burst  float64
	refill time.Duration

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxBuckets bounds the limiter's memory: when it is full, full buckets (keys that have
// not failed for a while) are dropped first.
const maxBuckets = 10000

// NewLimiter allows burst failures per key, then one more every refill.
func NewLimiter(burst int, refill time.Duration) *Limiter {
	return &Limiter{burst: float64(burst), refill: refill, buckets: map[string]*bucket{}}
}

func (l *Limiter) get(key string, now time.Time) *bucket {
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.prune(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
		return b
	}
	if el := now.Sub(b.at); el > 0 {
		b.tokens = min(l.burst, b.tokens+float64(el)/float64(l.refill))
		b.at = now
	}
	return b
}

func (l *Limiter) prune(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+float64(now.Sub(b.at))/float64(l.refill) >= l.burst {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxBuckets {
		// Still full: every key failed recently. Start over rather than grow without bound.
		l.buckets = map[string]*bucket{}
	}
}

// Allow reports whether key may try a login now, and if not, how long until it may.
func (l *Limiter) Allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.get(key, now)
	if b.tokens >= 1 {
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) * float64(l.refill))
}

// Fail takes a token from key for a failed login.
func (l *Limiter) Fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.get(key, now)
	b.tokens = max(0, b.tokens-1)
}
