package storage

import (
	"sync"
	"time"
)

// ratioWindow counts events and the misses among them in one-second buckets over a sliding
// window, for a miss ratio that follows what happens now rather than since startup.
type ratioWindow struct {
	mu      sync.Mutex
	now     func() time.Time
	seconds int64
	stamps  []int64 // the unix second each bucket holds
	total   []int64
	misses  []int64
}

func newRatioWindow(window time.Duration, now func() time.Time) *ratioWindow {
	if now == nil {
		now = time.Now
	}
	n := int64(window / time.Second)
	if n < 1 {
		n = 60
	}
	return &ratioWindow{now: now, seconds: n, stamps: make([]int64, n), total: make([]int64, n), misses: make([]int64, n)}
}

func (w *ratioWindow) add(miss bool) {
	sec := w.now().Unix()
	i := sec % w.seconds
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stamps[i] != sec {
		w.stamps[i], w.total[i], w.misses[i] = sec, 0, 0
	}
	w.total[i]++
	if miss {
		w.misses[i]++
	}
}

// ratio is misses over events in the window, 0 without events.
func (w *ratioWindow) ratio() float64 {
	sec := w.now().Unix()
	var total, misses int64
	w.mu.Lock()
	for i, s := range w.stamps {
		if s > sec-w.seconds && s <= sec {
			total += w.total[i]
			misses += w.misses[i]
		}
	}
	w.mu.Unlock()
	if total == 0 {
		return 0
	}
	return float64(misses) / float64(total)
}
