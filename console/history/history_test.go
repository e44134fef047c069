package history

import (
	"context"
	"testing"
	"time"

	"github.com/kafscale/kafscale/console/cluster"
)

type fakeSource struct {
	produced *float64
	live     bool
	lag      *int64
	groupsUp bool
}

func (f *fakeSource) Overview(context.Context) cluster.Overview {
	live := f.live
	return cluster.Overview{Etcd: cluster.EtcdStatus{Reachable: true}, Brokers: []cluster.Broker{{NodeID: 0, Live: &live, ProducedBytesTotal: f.produced}}}
}

func (f *fakeSource) Groups(context.Context) cluster.Groups {
	if !f.groupsUp {
		return cluster.Groups{Error: "etcd unreachable"}
	}
	return cluster.Groups{Groups: []cluster.GroupSummary{{Name: "g", TotalLag: f.lag}}}
}

func f64(v float64) *float64 { return &v }
func i64(v int64) *int64     { return &v }

func TestSamplesRatesAndGaps(t *testing.T) {
	src := &fakeSource{produced: f64(1000), live: true, lag: i64(5), groupsUp: true}
	var oks []bool
	s := New(src, 10*time.Second, 40*time.Second, func(ok bool) { oks = append(oks, ok) })
	now := time.Unix(1000, 0)
	s.now = func() time.Time { return now }
	step := func(mut func()) {
		mut()
		s.Sample(context.Background())
		now = now.Add(10 * time.Second)
	}
	step(func() {})                                           // first sample: no rate yet
	step(func() { src.produced = f64(3000) })                 // 200 B/s
	step(func() { src.produced = f64(100); src.lag = nil })   // counter reset: unknown; lag unknown
	step(func() { src.produced = nil; src.groupsUp = false }) // metrics and etcd unreadable
	step(func() { src.produced = f64(600); src.lag = i64(0); src.groupsUp = true })
	h := s.History()
	if len(h.Times) != 4 || h.Times[0] != time.Unix(1010, 0).UnixMilli() {
		t.Fatalf("kept %d samples from %d, want the last 4 (40 s at 10 s)", len(h.Times), h.Times[0])
	}
	p := h.Brokers[0].Produce
	if *p[0] != 200 || p[1] != nil || p[2] != nil || p[3] != nil {
		t.Errorf("produce rates %v", deref(p))
	}
	lag := h.Groups[0].Lag
	if *lag[0] != 5 || lag[1] != nil || lag[2] != nil || *lag[3] != 0 {
		t.Errorf("lag %v", lag)
	}
	if len(oks) != 5 || oks[3] || !oks[4] {
		t.Errorf("sample results %v", oks)
	}
}

func deref(v []*float64) []any {
	out := make([]any, len(v))
	for i, p := range v {
		if p != nil {
			out[i] = *p
		}
	}
	return out
}
