// Package history samples the cluster on the server once per interval, whether or not any
// page is open, and keeps the last hour in memory: produce and fetch throughput per broker
// (from the brokers' byte counters) and lag per consumer group. A page that reloads gets the
// whole history back. Each console replica samples on its own; a restart starts afresh.
package history

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/kafscale/kafscale/console/cluster"
)

// Source is what a sample reads.
type Source interface {
	Overview(ctx context.Context) cluster.Overview
	Groups(ctx context.Context) cluster.Groups
}

// Sampler takes and keeps the samples.
type Sampler struct {
	src      Source
	interval time.Duration
	keep     int
	now      func() time.Time
	onSample func(ok bool)

	mu     sync.Mutex
	points []point
	last   map[int32]counters // previous byte counters per broker
}

type point struct {
	t       time.Time
	brokers map[int32]rates
	groups  map[string]*int64 // nil: lag unknown at this sample
}

type rates struct{ produce, fetch *float64 }

type counters struct {
	t              time.Time
	produce, fetch *float64
}

// New keeps keep worth of samples taken every interval. onSample (may be nil) is told
// whether each sample could read etcd.
func New(src Source, interval, keep time.Duration, onSample func(ok bool)) *Sampler {
	if onSample == nil {
		onSample = func(bool) {}
	}
	return &Sampler{src: src, interval: interval, keep: int(keep / interval), now: time.Now, onSample: onSample, last: map[int32]counters{}}
}

// Run samples at once and then every interval until ctx ends.
func (s *Sampler) Run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		s.Sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sample takes one sample.
func (s *Sampler) Sample(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, s.interval)
	defer cancel()
	ov := s.src.Overview(ctx)
	gs := s.src.Groups(ctx)
	now := s.now()
	p := point{t: now, brokers: map[int32]rates{}, groups: map[string]*int64{}}

	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range ov.Brokers {
		if b.Live == nil || !*b.Live {
			delete(s.last, b.NodeID)
			continue
		}
		cur := counters{t: now, produce: b.ProducedBytesTotal, fetch: b.FetchedBytesTotal}
		prev, ok := s.last[b.NodeID]
		r := rates{}
		if ok {
			r.produce = rate(prev.t, prev.produce, now, cur.produce)
			r.fetch = rate(prev.t, prev.fetch, now, cur.fetch)
		}
		p.brokers[b.NodeID] = r
		s.last[b.NodeID] = cur
	}
	for _, g := range gs.Groups {
		p.groups[g.Name] = g.TotalLag
	}
	if gs.Groups == nil {
		p.groups = nil
	}
	s.points = append(s.points, p)
	if len(s.points) > s.keep {
		s.points = append([]point(nil), s.points[len(s.points)-s.keep:]...)
	}
	s.onSample(ov.Etcd.Reachable && gs.Error == "")
}

// rate is the per-second increase between two counter readings; nil when either is unknown
// or the counter went back (the broker restarted).
func rate(t0 time.Time, v0 *float64, t1 time.Time, v1 *float64) *float64 {
	if v0 == nil || v1 == nil || *v1 < *v0 || !t1.After(t0) {
		return nil
	}
	r := (*v1 - *v0) / t1.Sub(t0).Seconds()
	return &r
}

// History is the samples, column by column: Times[i] is the time of the i-th value of
// every series; a nil value is unknown at that sample (a gap in the chart).
type History struct {
	IntervalSeconds float64        `json:"intervalSeconds"`
	Times           []int64        `json:"times"` // Unix milliseconds
	Brokers         []BrokerSeries `json:"brokers"`
	Groups          []GroupSeries  `json:"groups"`
}

// BrokerSeries is one broker's throughput in bytes per second.
type BrokerSeries struct {
	NodeID  int32      `json:"nodeId"`
	Produce []*float64 `json:"produce"`
	Fetch   []*float64 `json:"fetch"`
}

// GroupSeries is one group's total lag in records.
type GroupSeries struct {
	Name string   `json:"name"`
	Lag  []*int64 `json:"lag"`
}

// History returns the kept samples.
func (s *Sampler) History() History {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := History{IntervalSeconds: s.interval.Seconds(), Times: make([]int64, len(s.points)), Brokers: []BrokerSeries{}, Groups: []GroupSeries{}}
	brokers := map[int32]*BrokerSeries{}
	groups := map[string]*GroupSeries{}
	for i, p := range s.points {
		h.Times[i] = p.t.UnixMilli()
		for id, r := range p.brokers {
			bs := brokers[id]
			if bs == nil {
				bs = &BrokerSeries{NodeID: id, Produce: make([]*float64, len(s.points)), Fetch: make([]*float64, len(s.points))}
				brokers[id] = bs
			}
			bs.Produce[i], bs.Fetch[i] = r.produce, r.fetch
		}
		for name, lag := range p.groups {
			gs := groups[name]
			if gs == nil {
				gs = &GroupSeries{Name: name, Lag: make([]*int64, len(s.points))}
				groups[name] = gs
			}
			gs.Lag[i] = lag
		}
	}
	for _, bs := range brokers {
		h.Brokers = append(h.Brokers, *bs)
	}
	sort.Slice(h.Brokers, func(i, j int) bool { return h.Brokers[i].NodeID < h.Brokers[j].NodeID })
	for _, gs := range groups {
		h.Groups = append(h.Groups, *gs)
	}
	sort.Slice(h.Groups, func(i, j int) bool { return h.Groups[i].Name < h.Groups[j].Name })
	return h
}
