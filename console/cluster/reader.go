package cluster

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kafscale/kafscale/internal/metadata"
)

// Options configure a Reader.
type Options struct {
	KV        KV
	Keys      metadata.Keys
	Endpoints []string // shown on the overview
	// BrokerMetricsURL, if set, replaces each broker's registered metrics address: {host}
	// is the broker's advertised host, {node} its NodeID.
	BrokerMetricsURL string
	// OperatorMetricsURL is the operator's /metrics; empty: snapshot status unknown.
	OperatorMetricsURL string
	SnapshotStale      time.Duration
	Timeout            time.Duration
	// Forget drops a gone broker from the overview after this long (the chart history).
	Forget time.Duration
	HTTP   *http.Client
	Now    func() time.Time
	// LookupHost resolves the operator metrics URL's host; net.DefaultResolver's by default.
	LookupHost func(ctx context.Context, host string) ([]string, error)
}

// Reader produces the console's views. It keeps one thing in memory: the brokers it has
// seen, so a broker that vanished from etcd is shown as gone instead of disappearing.
type Reader struct {
	kv                     KV
	keys                   metadata.Keys
	endpoints              []string
	brokerURL, operatorURL string
	stale, timeout, forget time.Duration
	http                   *http.Client
	now                    func() time.Time
	lookupHost             func(ctx context.Context, host string) ([]string, error)

	mu   sync.Mutex
	seen map[int32]*seenBroker
}

type seenBroker struct {
	b         Broker
	goneSince *time.Time
}

// NewReader makes a Reader.
func NewReader(o Options) *Reader {
	if o.HTTP == nil {
		o.HTTP = &http.Client{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Forget <= 0 {
		o.Forget = time.Hour
	}
	if o.LookupHost == nil {
		o.LookupHost = net.DefaultResolver.LookupHost
	}
	return &Reader{kv: o.KV, keys: o.Keys, endpoints: o.Endpoints, brokerURL: o.BrokerMetricsURL, operatorURL: o.OperatorMetricsURL,
		stale: o.SnapshotStale, timeout: o.Timeout, forget: o.Forget, http: o.HTTP, now: o.Now, lookupHost: o.LookupHost, seen: map[int32]*seenBroker{}}
}

// Overview reads etcd, every broker's metrics and the operator's, concurrently.
func (r *Reader) Overview(ctx context.Context) Overview {
	now := r.now()
	out := Overview{Namespace: r.keys.Namespace, Cluster: r.keys.Cluster, Time: now.UTC(), Etcd: EtcdStatus{Endpoints: r.endpoints}}
	snapDone := make(chan SnapshotStatus, 1)
	go func() { snapDone <- r.snapshotStatus(ctx, now) }()

	st, err := r.read(ctx, parts{members: true})
	if err != nil {
		out.Etcd.Error = err.Error()
		// What etcd said last is all there is: each known broker's liveness is unknown.
		r.mu.Lock()
		for _, s := range r.sortedSeen() {
			b := s.b
			b.Live, b.GoneSince = nil, s.goneSince
			out.Brokers = append(out.Brokers, b)
		}
		r.mu.Unlock()
	} else {
		out.Etcd.Reachable = true
		rev := st.rev
		out.Etcd.Revision = &rev
		if st.published {
			id, ctl := st.snap.ClusterID, st.snap.ControllerID
			out.ClusterID, out.ControllerID = &id, &ctl
		}
		out.Brokers = r.brokers(st, now)
	}
	var wg sync.WaitGroup
	for i := range out.Brokers {
		b := &out.Brokers[i]
		if b.Live == nil || !*b.Live {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.scrapeBroker(ctx, b)
		}()
	}
	wg.Wait()
	out.Snapshot = <-snapDone
	if out.Brokers == nil {
		out.Brokers = []Broker{}
	}
	return out
}

// brokers merges the registrations, the snapshot's broker list and the brokers seen before.
func (r *Reader) brokers(st *state, now time.Time) []Broker {
	r.mu.Lock()
	defer r.mu.Unlock()
	inMeta := map[int32]bool{}
	for _, b := range st.snap.Brokers {
		inMeta[b.NodeID] = true
	}
	live := map[int32]bool{}
	yes, no := true, false
	for _, m := range st.members {
		live[m.NodeID] = true
		b := Broker{NodeID: m.NodeID, Host: m.Host, Port: m.Port, Rack: m.Rack, Pod: m.Pod, Live: &yes, InMetadata: inMeta[m.NodeID]}
		if m.Version != "" {
			v := m.Version
			b.Version = &v
		}
		b.MetricsURL, b.MetricsError = r.metricsURL(m)
		r.seen[m.NodeID] = &seenBroker{b: b}
	}
	for _, b := range st.snap.Brokers {
		if !live[b.NodeID] && r.seen[b.NodeID] == nil {
			r.seen[b.NodeID] = &seenBroker{b: Broker{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack}}
		}
	}
	for id, s := range r.seen {
		if live[id] {
			continue
		}
		if s.goneSince == nil {
			t := now.UTC()
			s.goneSince = &t
		} else if now.Sub(*s.goneSince) > r.forget && !inMeta[id] {
			delete(r.seen, id)
			continue
		}
		s.b.Live, s.b.InMetadata = &no, inMeta[id]
		s.b.DrainState, s.b.S3Health, s.b.ProduceRPS, s.b.FetchRPS, s.b.ProducedBytesTotal, s.b.FetchedBytesTotal = nil, nil, nil, nil, nil, nil
		s.b.MetricsError = ""
	}
	var out []Broker
	for _, s := range r.sortedSeen() {
		b := s.b
		b.GoneSince = s.goneSince
		out = append(out, b)
	}
	return out
}

func (r *Reader) sortedSeen() []*seenBroker {
	out := make([]*seenBroker, 0, len(r.seen))
	for _, s := range r.seen {
		out = append(out, s)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].b.NodeID < out[j-1].b.NodeID; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func (r *Reader) metricsURL(m metadata.Member) (string, string) {
	if r.brokerURL != "" {
		u := strings.ReplaceAll(r.brokerURL, "{host}", m.Host)
		return strings.ReplaceAll(u, "{node}", strconv.Itoa(int(m.NodeID))), ""
	}
	if m.MetricsAddr == "" {
		return "", "the broker publishes no metrics address (an older broker): set KAFSCALE_CONSOLE_BROKER_METRICS_URL"
	}
	return (&url.URL{Scheme: "http", Host: m.MetricsAddr, Path: "/metrics"}).String(), ""
}

var (
	drainStates = map[float64]string{0: "serving", 1: "draining", 2: "drained"}
	s3States    = map[float64]string{0: "healthy", 1: "degraded", 2: "unavailable"}
)

func (r *Reader) scrapeBroker(ctx context.Context, b *Broker) {
	if b.MetricsURL == "" {
		return
	}
	fams, err := r.scrape(ctx, b.MetricsURL)
	if err != nil {
		b.MetricsError = err.Error()
		return
	}
	if v, ok := value(fams, "kafscale_broker_drain_state", nil); ok {
		if s, ok := drainStates[v]; ok {
			b.DrainState = &s
		}
	}
	if v, ok := value(fams, "kafscale_s3_health_state", nil); ok {
		if s, ok := s3States[v]; ok {
			b.S3Health = &s
		}
	}
	b.ProduceRPS = ptr(value(fams, "kafscale_produce_rps", nil))
	b.FetchRPS = ptr(value(fams, "kafscale_fetch_rps", nil))
	b.ProducedBytesTotal = ptr(value(fams, "kafscale_produced_bytes_total", nil))
	b.FetchedBytesTotal = ptr(value(fams, "kafscale_fetched_bytes_total", nil))
}

func ptr(v float64, ok bool) *float64 {
	if !ok {
		return nil
	}
	return &v
}

func (r *Reader) snapshotStatus(ctx context.Context, now time.Time) SnapshotStatus {
	out := SnapshotStatus{Configured: r.operatorURL != ""}
	if !out.Configured {
		out.Error = "no operator metrics URL is configured (KAFSCALE_CONSOLE_OPERATOR_METRICS_URL)"
		return out
	}
	label := map[string]string{"cluster": r.keys.Cluster}
	var (
		success, schedule, access       float64
		okSuccess, okSchedule, okAccess bool
		firstErr                        error
	)
	// Only the operator's leader exports the series: read every replica the URL's name
	// resolves to (a headless Service) and take the one that has them.
	for _, u := range r.operatorTargets(ctx) {
		fams, err := r.scrape(ctx, u)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		out.Reachable = true
		success, okSuccess = value(fams, "kafscale_operator_etcd_snapshot_last_success_timestamp_seconds", label)
		schedule, okSchedule = value(fams, "kafscale_operator_etcd_snapshot_last_schedule_timestamp_seconds", label)
		access, okAccess = value(fams, "kafscale_operator_etcd_snapshot_access_ok", label)
		if okSuccess || okSchedule || okAccess {
			break
		}
	}
	if !out.Reachable {
		out.Error = firstErr.Error()
		return out
	}
	if !okSuccess && !okSchedule && !okAccess {
		out.Error = fmt.Sprintf("the operator exports no snapshot series for cluster %q: it snapshots managed etcd only, and only its leader exports them", r.keys.Cluster)
		return out
	}
	if okSuccess && success > 0 {
		t := time.Unix(int64(success), 0).UTC()
		age := now.Sub(t).Seconds()
		out.LastSuccess, out.AgeSeconds = &t, &age
	}
	if okSchedule && schedule > 0 {
		t := time.Unix(int64(schedule), 0).UTC()
		out.LastSchedule = &t
	}
	if okAccess {
		ok := access == 1
		out.AccessOK = &ok
	}
	failing := false
	switch {
	case okAccess && access == 0:
		failing, out.Reason = true, "the operator cannot write snapshots to S3 (EtcdSnapshotAccess)"
	case okSuccess && success == 0 && okSchedule && schedule > 0:
		failing, out.Reason = true, "snapshots are scheduled but none has succeeded"
	case out.AgeSeconds != nil && *out.AgeSeconds > r.stale.Seconds():
		failing, out.Reason = true, fmt.Sprintf("the newest snapshot is older than %s", r.stale)
	}
	if okSuccess || okAccess {
		out.Failing = &failing
	}
	return out
}

// operatorTargets is the operator metrics URL once per address its host name resolves to,
// or the URL alone when it names an IP address or resolves to one address.
func (r *Reader) operatorTargets(ctx context.Context) []string {
	u, err := url.Parse(r.operatorURL)
	if err != nil || net.ParseIP(u.Hostname()) != nil {
		return []string{r.operatorURL}
	}
	lctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	addrs, err := r.lookupHost(lctx, u.Hostname())
	if err != nil || len(addrs) <= 1 {
		return []string{r.operatorURL}
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443"}[u.Scheme]
		if port == "" {
			port = "80"
		}
	}
	var out []string
	for _, a := range addrs {
		v := *u
		v.Host = net.JoinHostPort(a, port)
		out = append(out, v.String())
	}
	return out
}

// scrape reads a Prometheus text exposition.
func (r *Reader) scrape(ctx context.Context, u string) (map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("metrics URL %s: %w", u, err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := r.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics unreachable: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics unreachable: GET %s: %s", u, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("metrics of %s unreadable: %w", u, err)
	}
	return fams, nil
}

// value returns the value of the first series of a family whose labels include want.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		for k, v := range want {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// Seeds returns the advertised addresses of the brokers clients are sent to, for the
// record viewer's Kafka client.
func (r *Reader) Seeds(ctx context.Context) ([]string, error) {
	st, err := r.read(ctx, parts{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, b := range st.snap.Brokers {
		out = append(out, b.Host+":"+strconv.Itoa(int(b.Port)))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the metadata snapshot lists no broker")
	}
	return out, nil
}

// PartitionBounds returns a partition's log start and high watermark from etcd, and
// whether the topic and partition exist.
func (r *Reader) PartitionBounds(ctx context.Context, topic string, partition int32) (logStart, hwm int64, found bool, err error) {
	st, err := r.read(ctx, parts{partitions: true})
	if err != nil {
		return 0, 0, false, err
	}
	t := st.snap.Topic(topic)
	if t == nil || t.Partition(partition) == nil {
		return 0, 0, false, nil
	}
	ls, h, _ := st.logState(t, partition)
	return ls, h, true, nil
}
