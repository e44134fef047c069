package bench

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"time"
)

// Report is everything one run measured.
type Report struct {
	Config            Config
	Command           string
	Started, Finished time.Time
	Machine           Machine
	Broker            BrokerSettings
	BrokerEnv         []string

	TCP, Put, Get Ceiling

	// BrokerProduce are 1 KiB×1, 1 KiB×64, 16 KiB×1, 16 KiB×64 from Config.Producers
	// clients, then (Producers > 1) 1 KiB×1 from one client.
	BrokerProduce               []ProduceResult
	BrokerLatency, BrokerSteady LatencyResult
	// BrokerSequential is one producer sending one 1 KiB record per request, each after the
	// previous one's acknowledgement.
	BrokerSequential SequentialResult
	BrokerBacklog    ProduceResult
	// BrokerFetchCatchUp reads the backlog with plain Fetch requests (the target's
	// measurement: what the broker serves); BrokerCatchUp with a franz-go consumer, which
	// also decodes every record. Each starts from a restarted broker with an empty cache.
	BrokerFetchCatchUp, BrokerCatchUp CatchUpResult
	BrokerPeakRSS                     int64
	// BrokerPeakRSSPhases is each broker process's VmHWM: the produce runs, the plain-fetch
	// catch-up and the consumer catch-up.
	BrokerPeakRSSPhases         [3]int64
	ObjectsListed               int
	FlushesCounted, PutsCounted float64

	PeerProduce                   []ProduceResult
	PeerLatency                   LatencyResult
	PeerSequential                SequentialResult
	PeerBacklog                   ProduceResult
	PeerFetchCatchUp, PeerCatchUp CatchUpResult
	PeerPeakRSS                   int64

	// ProxyProduce are the 1 KiB × 1 and × 64 runs from Config.Producers clients through one
	// proxy (Config.Proxy).
	ProxyProduce []ProduceResult
	// ProxyRounds are the consumer catch-ups of the proxy comparison, each from a restarted
	// broker, in the order direct, proxy, proxy, direct: each side is measured next to the
	// other on the same broker state, and a drift of the machine over the four runs weighs
	// on both sides alike.
	ProxyRounds  []CatchUpResult
	ProxyPeakRSS int64

	Profiles []Profile
}

// Profile is a pprof profile of the broker and its top functions, by their own time or
// memory (Top) and with their callees' (Cum).
type Profile struct {
	Name, Path, Top, Cum string
}

// Machine describes where the run happened.
type Machine struct {
	CPU                string
	Cores              int
	MemBytes           int64
	Kernel, Go         string
	LoadStart, LoadEnd string // /proc/loadavg
}

func describeMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), LoadStart: loadavg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			m.MemBytes = kb << 10
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// peakRate is the broker's record rate with 1 KiB records on one partition: the latency
// run goes at half of it.
func (r *Report) peakRate() float64 {
	if len(r.BrokerProduce) == 0 {
		return 1
	}
	return max(r.BrokerProduce[0].RecordsPerSec(), 2)
}

// Target is one goal of issue #7 and how the run did.
type Target struct {
	Name     string
	Measured string
	Limit    string
	Ratio    float64 // measured / limit, or the ratio the goal is stated in
	Pass     bool
}

const gib = float64(1 << 30)

// PutsPerGiB is the S3 PUTs per GiB of payload acknowledged.
func (r ProduceResult) PutsPerGiB() float64 {
	if r.Bytes == 0 {
		return 0
	}
	return r.Delta.Puts / (float64(r.Bytes) / gib)
}

// PutEfficiency is PUTs / (bytes written / segment size): 1 when every object is full.
func (r ProduceResult) PutEfficiency(segment int) float64 {
	if r.Delta.PutBytes == 0 {
		return 0
	}
	return r.Delta.Puts / (r.Delta.PutBytes / float64(segment))
}

// CPUPerGiB is process CPU-seconds per GiB of payload.
func cpuPerGiB(cpu time.Duration, bytes int64) float64 {
	if bytes == 0 {
		return 0
	}
	return cpu.Seconds() / (float64(bytes) / gib)
}

// Targets evaluates the goals of issue #7 on this run.
func (r *Report) Targets() []Target {
	var ts []Target
	put := r.Put.BytesPerSec()
	matrix := r.BrokerProduce[:min(4, len(r.BrokerProduce))] // the runs from Config.Producers clients
	for _, p := range matrix {
		if p.RecordBytes != 1024 {
			continue
		}
		ratio := p.BytesPerSec() / put
		ts = append(ts, Target{
			Name:     fmt.Sprintf("produce 1 KiB, acks=all, sync flush, %d partition(s), %s ≥ 70%% of the S3 PUT ceiling", p.Partitions, producers(p.Producers)),
			Measured: mbps(p.BytesPerSec()), Limit: "0.70 × " + mbps(put), Ratio: ratio, Pass: ratio >= 0.70,
		})
	}
	get := r.Get.BytesPerSec()
	cr := r.BrokerFetchCatchUp.BytesPerSec() / get
	ts = append(ts, Target{Name: "catch-up read from S3 (plain fetches) ≥ 70% of the S3 GET ceiling",
		Measured: mbps(r.BrokerFetchCatchUp.BytesPerSec()), Limit: "0.70 × " + mbps(get), Ratio: cr, Pass: cr >= 0.70})
	limit := r.Broker.FlushInterval + 2*r.Put.Latencies.P99
	lr := r.BrokerLatency.Latency.P99.Seconds() / limit.Seconds()
	ts = append(ts, Target{Name: "end-to-end p99 at half of peak ≤ flush interval + 2 × S3 PUT p99",
		Measured: ms(r.BrokerLatency.Latency.P99), Limit: fmt.Sprintf("%s + 2 × %s = %s", ms(r.Broker.FlushInterval), ms(r.Put.Latencies.P99), ms(limit)),
		Ratio: lr, Pass: lr <= 1 && r.BrokerLatency.Received == r.BrokerLatency.Sent})
	perFlush := r.steadyPutsPerFlush()
	ts = append(ts, Target{Name: fmt.Sprintf("S3 PUTs at a steady %s ≤ about 2 per flush interval", mbps(r.Config.SteadyBytesPerSec)),
		Measured: fmt.Sprintf("%.2f per %s", perFlush, ms(r.Broker.FlushInterval)), Limit: "2", Ratio: perFlush / 2, Pass: perFlush <= 2})
	worst := 0.0
	for _, p := range r.BrokerProduce {
		worst = max(worst, p.PutEfficiency(r.Broker.SegmentBytes))
	}
	ts = append(ts, Target{Name: "S3 PUTs at peak ≤ 1.2 × bytes / segment size (worst produce run)",
		Measured: fmt.Sprintf("%.2f × bytes / %d", worst, r.Broker.SegmentBytes), Limit: "1.2", Ratio: worst / 1.2, Pass: worst <= 1.2})
	for i := 0; i+1 < len(matrix); i += 2 {
		a, b := matrix[i], matrix[i+1]
		diff := 0.0
		if a.PutsPerGiB() > 0 {
			diff = b.PutsPerGiB()/a.PutsPerGiB() - 1
		}
		ts = append(ts, Target{Name: fmt.Sprintf("S3 PUTs per GiB, %s records: 64 vs 1 partition within 10%%", size(a.RecordBytes)),
			Measured: fmt.Sprintf("%.0f vs %.0f", b.PutsPerGiB(), a.PutsPerGiB()), Limit: "±10%", Ratio: 1 + diff, Pass: diff <= 0.10 && diff >= -0.10})
	}
	ts = append(ts, r.proxyTargets()...)
	rssLimit := r.Broker.CacheBytes + 150<<20
	rr := float64(r.BrokerPeakRSS) / float64(rssLimit)
	ts = append(ts, Target{Name: "broker peak RSS ≤ configured cache + 150 MiB",
		Measured: mib(r.BrokerPeakRSS), Limit: mib(r.Broker.CacheBytes) + " + 150 MiB", Ratio: rr, Pass: rr <= 1})
	return ts
}

// proxyComparisons pairs each run through the proxy with the direct run of the same
// workload in this report.
func (r *Report) proxyComparisons() []proxyComparison {
	if len(r.ProxyProduce) == 0 {
		return nil
	}
	var out []proxyComparison
	for _, p := range r.ProxyProduce {
		for _, d := range r.BrokerProduce[:min(4, len(r.BrokerProduce))] {
			if d.RecordBytes == p.RecordBytes && d.Partitions == p.Partitions && d.Producers == p.Producers {
				out = append(out, proxyComparison{
					name:    fmt.Sprintf("produce %s × %d, %s", size(p.RecordBytes), p.Partitions, producers(p.Producers)),
					viaRate: p.BytesPerSec(), directRate: d.BytesPerSec(), via: p.Delta, direct: d.Delta, bytes: p.Bytes, directBytes: d.Bytes,
				})
			}
		}
	}
	c, d := r.proxyCatchUp()
	out = append(out, proxyComparison{name: "catch-up from S3, franz-go consumer", viaRate: c.BytesPerSec(), directRate: d.BytesPerSec(),
		via: c.Delta, direct: d.Delta, bytes: c.Bytes, directBytes: d.Bytes})
	return out
}

// proxyCatchUp sums the catch-up rounds of the proxy comparison: through the proxy, and
// direct.
func (r *Report) proxyCatchUp() (via, direct CatchUpResult) {
	via.System, direct.System = "proxy", "broker"
	for _, c := range r.ProxyRounds {
		side := &direct
		if c.System == "proxy" {
			side = &via
		}
		side.Records += c.Records
		side.Bytes += c.Bytes
		side.Delta = side.Delta.add(c.Delta)
	}
	return via, direct
}

type proxyComparison struct {
	name                string
	viaRate, directRate float64
	via, direct         Delta
	bytes, directBytes  int64
}

// proxyTargets: through one proxy at least 0.8 × the direct rate of the same run (issue #16).
func (r *Report) proxyTargets() []Target {
	var ts []Target
	for _, c := range r.proxyComparisons() {
		ratio := 0.0
		if c.directRate > 0 {
			ratio = c.viaRate / c.directRate
		}
		ts = append(ts, Target{Name: "(issue #16) " + c.name + " through one proxy ≥ 0.8 × direct",
			Measured: mbps(c.viaRate), Limit: "0.8 × " + mbps(c.directRate), Ratio: ratio, Pass: ratio >= 0.8})
	}
	return ts
}

func (r *Report) steadyPutsPerFlush() float64 {
	d := r.BrokerSteady.Delta
	if d.Elapsed <= 0 {
		return 0
	}
	return d.Puts / (d.Elapsed.Seconds() / r.Broker.FlushInterval.Seconds())
}

// peerProduce is the kfake run matching the broker's produce run i (zero when the peer did
// not run).
func (r *Report) peerProduce(i int) ProduceResult {
	if i < len(r.PeerProduce) {
		return r.PeerProduce[i]
	}
	return ProduceResult{}
}

func producers(n int) string {
	if n == 1 {
		return "1 producer"
	}
	return fmt.Sprintf("%d producers", n)
}

func mbps(b float64) string     { return fmt.Sprintf("%.1f MB/s", b/1e6) }
func mib(b int64) string        { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }
func size(b int) string {
	if b%1024 == 0 {
		return fmt.Sprintf("%d KiB", b/1024)
	}
	return fmt.Sprintf("%d B", b)
}

func ratio(a, b float64) string {
	if b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// hist describes a histogram delta: count, the bucket bound of its p99, and how many were slow.
func hist(h Hist) string {
	if h.N == 0 {
		return "none"
	}
	bound := "beyond the last bucket"
	if !math.IsInf(h.P99Bound, 1) {
		bound = "≤ " + ms(time.Duration(h.P99Bound*float64(time.Second)))
	}
	return fmt.Sprintf("%.0f, p99 %s, %.0f over %.0f ms", h.N, bound, h.Slow, SlowBound*1000)
}

func lat(p Percentiles) string {
	return fmt.Sprintf("p50 %s, p99 %s, p999 %s", ms(p.P50), ms(p.P99), ms(p.P999))
}

// machineCost says what a ceiling cost the whole machine: cores busy and CPU-seconds per GiB.
func machineCost(c Ceiling) string {
	return fmt.Sprintf("machine %.2f cores busy, %.2f CPU-s/GiB", c.Cores(), c.CPUPerGiB())
}

// Markdown renders the report: machine, settings, the side-by-side table, the targets,
// and the profiles' top functions.
func (r *Report) Markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := r.Machine
	w("Run %s → %s (%s), command `%s`.\n\n", r.Started.Format("2006-01-02 15:04 MST"), r.Finished.Format("15:04 MST"),
		r.Finished.Sub(r.Started).Round(time.Second), r.Command)
	w("Machine: %s, %d cores, %.1f GiB RAM, Linux %s, %s; load average %s at the start, %s at the end.\n\n",
		m.CPU, m.Cores, float64(m.MemBytes)/gib, m.Kernel, m.Go, m.LoadStart, m.LoadEnd)
	w("Broker: segment %d B, flush interval %s, cache %s, readahead %d; ceilings use %d parallel PUT(s) and %d parallel GET(s) of %d-byte objects. ",
		r.Broker.SegmentBytes, r.Broker.FlushInterval, mib(r.Broker.CacheBytes), r.Broker.ReadaheadSegments, r.Broker.PutParallelism, r.Broker.GetParallelism, r.Broker.SegmentBytes)
	w("Runs: %s measured after %s warm-up; latency runs %s; backlog %d MiB of %s records. Payloads are crypto-random (incompressible), producer compression off, acks=all, franz-go defaults otherwise.\n\n",
		r.Config.Duration, r.Config.Warmup, r.Config.LatencyDuration, r.Config.BacklogBytes>>20, size(r.Config.BacklogRecordBytes))

	w("| measurement | broker | ceiling | broker / ceiling | kfake | broker / kfake |\n|---|---|---|---|---|---|\n")
	w("| loopback TCP, 1 connection | | %s; %s | | | |\n", mbps(r.TCP.BytesPerSec()), machineCost(r.TCP))
	w("| S3 PUT ceiling: %s objects × %d in parallel (raw aws-sdk-go-v2) | | %s; %s; %s | | | |\n",
		size(r.Put.ObjectBytes), r.Put.Parallelism, mbps(r.Put.BytesPerSec()), lat(r.Put.Latencies), machineCost(r.Put))
	w("| S3 GET ceiling: %s objects × %d in parallel | | %s; %s; %s | | | |\n",
		size(r.Get.ObjectBytes), r.Get.Parallelism, mbps(r.Get.BytesPerSec()), lat(r.Get.Latencies), machineCost(r.Get))
	// What the machine allows at all when every byte costs what the ceilings measured: a
	// produced byte is received over loopback and PUT; a byte caught up is GET and sent over
	// loopback, with nothing else running.
	hop := r.TCP.CPUPerGiB()
	for _, b := range []struct {
		name, op string
		s3       Ceiling
	}{{"produce", "PUT", r.Put}, {"catch-up", "GET", r.Get}} {
		if b.s3.CPUPerGiB() <= 0 || hop <= 0 {
			continue
		}
		bound := float64(r.Machine.Cores) / (b.s3.CPUPerGiB() + hop) * gib
		w("| machine bound for %s (%s + a loopback hop per byte): %d cores ÷ (%.2f + %.2f CPU-s/GiB), no broker, client or etcd CPU | | %s | %s of the %s ceiling | | |\n",
			b.name, b.op, r.Machine.Cores, b.s3.CPUPerGiB(), hop, mbps(bound), ratio(bound, b.s3.BytesPerSec()), b.op)
	}
	for i, p := range r.BrokerProduce {
		peer := r.peerProduce(i)
		w("| produce %s records, %d partition(s), %s: MB/s (records/s) | %s (%.0f/s) | %s (PUT) | %s | %s (%.0f/s) | %s |\n",
			size(p.RecordBytes), p.Partitions, producers(p.Producers), mbps(p.BytesPerSec()), p.RecordsPerSec(), mbps(r.Put.BytesPerSec()),
			ratio(p.BytesPerSec(), r.Put.BytesPerSec()), mbps(peer.BytesPerSec()), peer.RecordsPerSec(), ratio(p.BytesPerSec(), peer.BytesPerSec()))
	}
	for i, p := range r.BrokerProduce {
		peer := r.peerProduce(i)
		bc, pc := cpuPerGiB(p.Delta.CPU, p.Bytes), cpuPerGiB(peer.Delta.CPU, peer.Bytes)
		w("| CPU-seconds per GiB produced, %s × %d, %s | %.2f s | | | %.2f s | %s |\n", size(p.RecordBytes), p.Partitions, producers(p.Producers), bc, pc, ratio(bc, pc))
	}
	for i, p := range r.BrokerProduce {
		peer := r.peerProduce(i)
		w("| cores in use, produce %s × %d, %s: the system / load generator / whole machine (of %d) | %.2f / %.2f / %.2f | | | %.2f / %.2f / %.2f | |\n",
			size(p.RecordBytes), p.Partitions, producers(p.Producers), r.Machine.Cores, p.Delta.Cores(p.Delta.CPU), p.Delta.Cores(p.Delta.SelfCPU), p.Delta.Cores(p.Delta.Busy),
			peer.Delta.Cores(peer.Delta.CPU), peer.Delta.Cores(peer.Delta.SelfCPU), peer.Delta.Cores(peer.Delta.Busy))
	}
	for i, p := range r.BrokerProduce {
		peer := r.peerProduce(i)
		w("| peak RSS during produce %s × %d, %s | %s | cache + 150 MiB = %s | %s | %s | |\n", size(p.RecordBytes), p.Partitions, producers(p.Producers),
			mib(p.Delta.PeakRSS), mib(r.Broker.CacheBytes+150<<20), ratio(float64(p.Delta.PeakRSS), float64(r.Broker.CacheBytes+150<<20)), mib(peer.Delta.PeakRSS))
	}
	for _, p := range r.BrokerProduce {
		w("| flush stages during produce %s × %d, %s: S3 uploads; etcd commits (a slow upload or commit holds the acks of its flush) | %s; %s | | | | |\n",
			size(p.RecordBytes), p.Partitions, producers(p.Producers), hist(p.Delta.Uploads), hist(p.Delta.Commits))
	}
	for _, p := range r.BrokerProduce {
		w("| S3 PUTs per GiB produced, %s × %d, %s (mean object %.2f × segment) | %.0f (%.0f PUTs) | %.0f (1 per %d B) | %.2f | | |\n",
			size(p.RecordBytes), p.Partitions, producers(p.Producers), 1/max(p.PutEfficiency(r.Broker.SegmentBytes), 1e-9), p.PutsPerGiB(), p.Delta.Puts,
			gib/float64(r.Broker.SegmentBytes), r.Broker.SegmentBytes, p.PutsPerGiB()/(gib/float64(r.Broker.SegmentBytes)))
	}
	bl, pl := r.BrokerLatency, r.PeerLatency
	w("| end-to-end latency, 1 KiB at %.0f records/s (half of peak) from %s, %d/%d received | %s | flush + 2 × PUT p99 = %s | %s | %s | %s |\n",
		bl.TargetRate, producers(bl.Producers), bl.Received, bl.Sent, lat(bl.Latency), ms(r.Broker.FlushInterval+2*r.Put.Latencies.P99),
		ratio(float64(bl.Latency.P99), float64(r.Broker.FlushInterval+2*r.Put.Latencies.P99)), lat(pl.Latency), ratio(float64(bl.Latency.P99), float64(pl.Latency.P99)))
	w("| flush stages during the latency run: S3 uploads; etcd commits (serial: a slow one holds the flushes behind it) | %s; %s | | | | |\n",
		hist(bl.Delta.Uploads), hist(bl.Delta.Commits))
	st := r.BrokerSteady
	w("| steady %s, 1 KiB: latency; S3 PUTs per flush interval | %s; %.2f PUTs per %s | | | | |\n",
		mbps(r.Config.SteadyBytesPerSec), lat(st.Latency), r.steadyPutsPerFlush(), ms(r.Broker.FlushInterval))
	sq, psq := r.BrokerSequential, r.PeerSequential
	w("| one request at a time: 1 client, 1 KiB record per request, the next sent on the acknowledgement: requests/s; latency per request; S3 PUTs per second | %.1f/s; %s; %.2f PUTs/s | 1 per flush interval = %.1f/s | %s | %.1f/s; %s | %s |\n",
		sq.RequestsPerSec(), lat(sq.Latency), rate(sq.Delta.Puts, sq.Delta.Elapsed), float64(time.Second)/float64(r.Broker.FlushInterval),
		ratio(sq.RequestsPerSec(), float64(time.Second)/float64(r.Broker.FlushInterval)), psq.RequestsPerSec(), lat(psq.Latency), ratio(sq.RequestsPerSec(), psq.RequestsPerSec()))
	w("| backlog produce, %s × 1 | %s | %s (PUT) | %s | %s | %s |\n", size(r.Config.BacklogRecordBytes),
		mbps(r.BrokerBacklog.BytesPerSec()), mbps(r.Put.BytesPerSec()), ratio(r.BrokerBacklog.BytesPerSec(), r.Put.BytesPerSec()),
		mbps(r.PeerBacklog.BytesPerSec()), ratio(r.BrokerBacklog.BytesPerSec(), r.PeerBacklog.BytesPerSec()))
	fcu, pfcu := r.BrokerFetchCatchUp, r.PeerFetchCatchUp
	w("| catch-up read of %d MiB after a broker restart, plain fetches (from S3; kfake from memory) | %s in %s (%.0f GETs, mean %s) | %s (GET) | %s | %s | %s |\n",
		fcu.Bytes>>20, mbps(fcu.BytesPerSec()), fcu.Delta.Elapsed.Round(10*time.Millisecond), fcu.Delta.Gets, mib(int64(fcu.Delta.GetBytes/max(fcu.Delta.Gets, 1))),
		mbps(r.Get.BytesPerSec()), ratio(fcu.BytesPerSec(), r.Get.BytesPerSec()), mbps(pfcu.BytesPerSec()), ratio(fcu.BytesPerSec(), pfcu.BytesPerSec()))
	w("| cores in use, plain-fetch catch-up: the system / reader / whole machine (of %d) | %.2f / %.2f / %.2f | | | %.2f / %.2f / %.2f | |\n", r.Machine.Cores,
		fcu.Delta.Cores(fcu.Delta.CPU), fcu.Delta.Cores(fcu.Delta.SelfCPU), fcu.Delta.Cores(fcu.Delta.Busy),
		pfcu.Delta.Cores(pfcu.Delta.CPU), pfcu.Delta.Cores(pfcu.Delta.SelfCPU), pfcu.Delta.Cores(pfcu.Delta.Busy))
	cu, pcu := r.BrokerCatchUp, r.PeerCatchUp
	w("| catch-up read of %d MiB after a broker restart, franz-go consumer decoding every record | %s in %s (%.0f GETs, mean %s) | %s (GET) | %s | %s | %s |\n",
		cu.Bytes>>20, mbps(cu.BytesPerSec()), cu.Delta.Elapsed.Round(10*time.Millisecond), cu.Delta.Gets, mib(int64(cu.Delta.GetBytes/max(cu.Delta.Gets, 1))),
		mbps(r.Get.BytesPerSec()), ratio(cu.BytesPerSec(), r.Get.BytesPerSec()), mbps(pcu.BytesPerSec()), ratio(cu.BytesPerSec(), pcu.BytesPerSec()))
	w("| plain-fetch catch-up: bytes GET from S3 per byte served (1.00 = every byte read once) | %.2f (%s in %.0f GETs) | | | | |\n",
		fcu.Delta.GetBytes/max(float64(fcu.Bytes), 1), mib(int64(fcu.Delta.GetBytes)), fcu.Delta.Gets)
	w("| cores in use, catch-up: the system / consumer / whole machine (of %d) | %.2f / %.2f / %.2f | | | %.2f / %.2f / %.2f | |\n", r.Machine.Cores,
		cu.Delta.Cores(cu.Delta.CPU), cu.Delta.Cores(cu.Delta.SelfCPU), cu.Delta.Cores(cu.Delta.Busy),
		pcu.Delta.Cores(pcu.Delta.CPU), pcu.Delta.Cores(pcu.Delta.SelfCPU), pcu.Delta.Cores(pcu.Delta.Busy))
	bcc, pcc := cpuPerGiB(cu.Delta.CPU, cu.Bytes), cpuPerGiB(pcu.Delta.CPU, pcu.Bytes)
	w("| CPU-seconds per GiB read (catch-up) | %.2f s | | | %.2f s | %s |\n", bcc, pcc, ratio(bcc, pcc))
	fbcc, fpcc := cpuPerGiB(fcu.Delta.CPU, fcu.Bytes), cpuPerGiB(pfcu.Delta.CPU, pfcu.Bytes)
	w("| CPU-seconds per GiB read (plain-fetch catch-up) | %.2f s | | | %.2f s | %s |\n", fbcc, fpcc, ratio(fbcc, fpcc))
	w("| peak RSS (VmHWM) | %s | cache + 150 MiB = %s | %s | %s | %s |\n", mib(r.BrokerPeakRSS), mib(r.Broker.CacheBytes+150<<20),
		ratio(float64(r.BrokerPeakRSS), float64(r.Broker.CacheBytes+150<<20)), mib(r.PeerPeakRSS), ratio(float64(r.BrokerPeakRSS), float64(r.PeerPeakRSS)))
	ph := r.BrokerPeakRSSPhases
	w("| peak RSS by broker process: produce runs / plain-fetch catch-up / consumer catch-up | %s / %s / %s | | | | |\n", mib(ph[0]), mib(ph[1]), mib(ph[2]))
	w("| cross-check: segment objects listed in the bucket vs flushes and PUTs counted by the broker (first process) | %d listed | %.0f flushes, %.0f PUTs | | | |\n\n",
		r.ObjectsListed, r.FlushesCounted, r.PutsCounted)

	if cs := r.proxyComparisons(); len(cs) > 0 {
		w("Through one proxy in front of the same broker, same run (the clients know only the proxy):\n\n")
		w("| workload | through the proxy | direct | proxy / direct | proxy CPU-s per GiB | broker CPU-s per GiB, via proxy / direct | cores in use via the proxy: proxy / broker / load generator / machine (of %d) |\n|---|---|---|---|---|---|---|\n", r.Machine.Cores)
		for _, c := range cs {
			w("| %s | %s | %s | %s | %.2f s | %.2f / %.2f s | %.2f / %.2f / %.2f / %.2f |\n", c.name, mbps(c.viaRate), mbps(c.directRate), ratio(c.viaRate, c.directRate),
				cpuPerGiB(c.via.ProxyCPU, c.bytes), cpuPerGiB(c.via.CPU, c.bytes), cpuPerGiB(c.direct.CPU, c.directBytes),
				c.via.Cores(c.via.ProxyCPU), c.via.Cores(c.via.CPU), c.via.Cores(c.via.SelfCPU), c.via.Cores(c.via.Busy))
		}
		w("| proxy peak RSS (VmHWM) | %s | | | | | |\n\n", mib(r.ProxyPeakRSS))
		if len(r.ProxyRounds) > 0 {
			var rounds []string
			for _, c := range r.ProxyRounds {
				rounds = append(rounds, c.System+" "+mbps(c.BytesPerSec()))
			}
			w("The catch-up comparison reads the backlog four times, each from a restarted broker: %s; each side's rate is its bytes over its time.\n\n",
				strings.Join(rounds, ", "))
		}
	}
	w("| target (issue #7) | measured | limit | ratio | result |\n|---|---|---|---|---|\n")
	for _, t := range r.Targets() {
		res := "MISS"
		if t.Pass {
			res = "PASS"
		}
		w("| %s | %s | %s | %.2f | %s |\n", t.Name, t.Measured, t.Limit, t.Ratio, res)
	}
	for _, p := range r.Profiles {
		if !strings.HasSuffix(p.Name, "cpu.pprof") || strings.Contains(p.Name, "-16k-") || strings.HasPrefix(p.Name, "proxy-produce-") {
			continue // the 16 KiB runs' and the proxy's produce profiles stay in OutDir only
		}
		w("\n`%s` (in `%s/`), `go tool pprof -top` (own time):\n\n```\n%s```\n", p.Name, r.Config.OutDir, trimTop(p.Top, 15))
		w("\nand `-top -cum` (with callees; the broker's functions and the dominant library leaves only):\n\n```\n%s```\n", trimTop(p.Cum, 25))
	}
	return b.String()
}

// trimTop keeps the header and the first n functions of `pprof -top`.
func trimTop(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	var out []string
	fns := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Type:") || strings.HasPrefix(l, "Time:") ||
			strings.HasPrefix(l, "Active filters:") || strings.HasPrefix(l, "   show=") {
			continue
		}
		out = append(out, l)
		if strings.Contains(l, "%") && !strings.HasPrefix(strings.TrimSpace(l), "flat") && !strings.HasPrefix(l, "Showing") && !strings.HasPrefix(l, "Duration") {
			fns++
			if fns >= n {
				break
			}
		}
	}
	return strings.Join(out, "\n") + "\n"
}

// Validate checks that every row holds a sane value: what the smoke test asserts. It says
// nothing about speed.
func (r *Report) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	ordered := func(name string, p Percentiles) {
		check(p.N > 0 && p.P50 > 0 && p.P50 <= p.P99 && p.P99 <= p.P999 && p.P999 <= p.Max,
			"%s: percentiles not positive and ordered: %+v", name, p)
	}
	check(r.TCP.BytesPerSec() > 0, "tcp ceiling is zero")
	check(r.Put.BytesPerSec() > 0 && r.Put.Ops > 0, "put ceiling is zero")
	ordered("put ceiling", r.Put.Latencies)
	check(r.Get.BytesPerSec() > 0 && r.Get.Ops > 0, "get ceiling is zero")
	for name, runs := range map[string][]ProduceResult{"broker": r.BrokerProduce, "kfake": r.PeerProduce} {
		want := 4
		if r.Config.Producers > 1 {
			want = 5
		}
		check(len(runs) == want, "%s: %d produce runs, want %d", name, len(runs), want)
		for _, p := range runs {
			check(p.BytesPerSec() > 0 && p.Records > 0 && p.Delta.CPU >= 0, "%s: produce %d B × %d: nothing acknowledged", name, p.RecordBytes, p.Partitions)
			if name == "broker" {
				check(p.Delta.Puts > 0 && p.Delta.PutBytes > 0, "broker: produce %d B × %d: no S3 PUT counted", p.RecordBytes, p.Partitions)
				check(p.Delta.Uploads.N > 0 && p.Delta.Commits.N > 0, "broker: produce %d B × %d: flush histograms not read (uploads %+v, commits %+v)",
					p.RecordBytes, p.Partitions, p.Delta.Uploads, p.Delta.Commits)
			}
		}
	}
	d := r.BrokerLatency.Delta
	check(d.Uploads.N > 0 && d.Commits.N > 0 && d.Uploads.N >= d.Uploads.Slow && d.Commits.N >= d.Commits.Slow,
		"broker latency: flush histograms not read (uploads %+v, commits %+v)", d.Uploads, d.Commits)
	for name, l := range map[string]LatencyResult{"broker latency": r.BrokerLatency, "broker steady": r.BrokerSteady, "kfake latency": r.PeerLatency} {
		check(l.Sent > 0 && l.Received == l.Sent, "%s: received %d of %d records", name, l.Received, l.Sent)
		ordered(name, l.Latency)
	}
	check(r.steadyPutsPerFlush() > 0, "steady run counted no PUTs")
	for name, sq := range map[string]SequentialResult{"broker": r.BrokerSequential, "kfake": r.PeerSequential} {
		check(sq.Requests > 0 && sq.RequestsPerSec() > 0, "%s: one request at a time: nothing acknowledged", name)
		ordered(name+" one request at a time", sq.Latency)
	}
	check(r.BrokerSequential.Delta.Puts > 0, "broker: one request at a time: no S3 PUT counted")
	for name, c := range map[string]CatchUpResult{"broker": r.BrokerCatchUp, "kfake": r.PeerCatchUp, "broker plain fetches": r.BrokerFetchCatchUp, "kfake plain fetches": r.PeerFetchCatchUp} {
		check(c.BytesPerSec() > 0 && c.Bytes >= r.Config.BacklogBytes, "%s: catch-up read %d bytes, want %d", name, c.Bytes, r.Config.BacklogBytes)
	}
	check(r.BrokerCatchUp.Delta.Gets > 0 && r.BrokerFetchCatchUp.Delta.Gets > 0, "a broker catch-up made no S3 GET (was it served from a cache?)")
	check(r.BrokerPeakRSS > 0 && r.PeerPeakRSS > 0, "peak RSS not read")
	check(r.ObjectsListed > 0 && float64(r.ObjectsListed) == r.FlushesCounted, "objects listed %d != flushes counted %.0f", r.ObjectsListed, r.FlushesCounted)
	wantTargets := 9
	if r.Config.Proxy {
		wantTargets += 3
		check(len(r.ProxyProduce) == 2, "%d produce runs through the proxy, want 2", len(r.ProxyProduce))
		for _, p := range r.ProxyProduce {
			check(p.BytesPerSec() > 0 && p.Records > 0 && p.Delta.ProxyCPU > 0, "proxy: produce %d B × %d: nothing acknowledged or no proxy CPU read", p.RecordBytes, p.Partitions)
			check(p.Delta.Puts > 0, "proxy: produce %d B × %d: no S3 PUT counted: the records did not reach the broker", p.RecordBytes, p.Partitions)
		}
		check(len(r.ProxyRounds) == 4, "%d catch-ups in the proxy comparison, want 4", len(r.ProxyRounds))
		for _, c := range r.ProxyRounds {
			check(c.BytesPerSec() > 0 && c.Bytes >= r.Config.BacklogBytes, "%s: catch-up read %d bytes, want %d", c.System, c.Bytes, r.Config.BacklogBytes)
			check(c.Delta.Gets > 0, "%s: the catch-up made no S3 GET (was it served from a cache?)", c.System)
			check(c.System != "proxy" || c.Delta.ProxyCPU > 0, "proxy: no proxy CPU read during the catch-up")
		}
		check(r.ProxyPeakRSS > 0, "proxy peak RSS not read")
		check(len(r.proxyComparisons()) == 3, "%d comparisons with direct runs, want 3", len(r.proxyComparisons()))
	}
	check(len(r.Targets()) == wantTargets, "%d targets, want %d", len(r.Targets()), wantTargets)
	return errors.Join(errs...)
}

// The generated section of docs/benchmarks.md lies between these markers.
const (
	docBegin = "<!-- bench:begin (generated by make bench; edits are overwritten) -->"
	docEnd   = "<!-- bench:end -->"
)

// UpdateDoc replaces the generated section of the Markdown file at path with md.
func UpdateDoc(path, md string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	i, j := strings.Index(s, docBegin), strings.Index(s, docEnd)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no generated section (%q … %q)", path, docBegin, docEnd)
	}
	s = s[:i+len(docBegin)] + "\n\n" + md + "\n" + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}
