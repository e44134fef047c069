package local

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The whole local platform in this process: start it, produce and consume through it,
// stop it, start it again on the same directory and find the records still there.
func TestLocalPlatformKeepsDataAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	var banner bytes.Buffer
	withPlatform(t, Options{Dir: dir, Out: &banner}, func(ctx context.Context, p *Platform) {
		if !strings.Contains(banner.String(), "kcat -b "+p.Bootstrap()+" -P -t demo") {
			t.Fatalf("banner lacks the kcat example for %s:\n%s", p.Bootstrap(), banner.String())
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(p.Bootstrap()), kgo.DefaultProduceTopic("local"), kgo.AllowAutoTopicCreation())
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		for i := 0; i < 100; i++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
		}
	})
	withPlatform(t, Options{Dir: dir}, func(ctx context.Context, p *Platform) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(p.Bootstrap()), kgo.ConsumeTopics("local"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		for n := 0; n < 100; {
			fs := cl.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatalf("poll after restart: %v (%d records read)", err, n)
			}
			fs.EachRecord(func(r *kgo.Record) {
				if r.Offset != int64(n) || r.Value[0] != byte(n) {
					t.Fatalf("record %d: offset %d value %d", n, r.Offset, r.Value[0])
				}
				n++
			})
		}
	})
}

func TestLocalPlatformRunsThreeBrokers(t *testing.T) {
	withPlatform(t, Options{Dir: t.TempDir(), Brokers: 3}, func(ctx context.Context, p *Platform) {
		if got := strings.Count(p.Bootstrap(), ","); got != 2 {
			t.Fatalf("bootstrap %q, want three brokers", p.Bootstrap())
		}
	})
}

// withPlatform runs the platform on free ports, calls fn once it serves, then stops it and
// checks it stopped cleanly.
func withPlatform(t *testing.T, opts Options, fn func(context.Context, *Platform)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	ready := make(chan *Platform, 1)
	done := make(chan error, 1)
	opts.Env = map[string]string{"KAFSCALE_FLUSH_INTERVAL_MS": "20", "KAFSCALE_LOG_LEVEL": "warn"}
	go func() { done <- Run(runCtx, opts, func(p *Platform) { ready <- p }) }()
	select {
	case p := <-ready:
		fn(ctx, p)
	case err := <-done:
		t.Fatalf("platform ended before serving: %v", err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// With the proxy (what `make run` starts), the bootstrap address is the proxy's: three
// brokers stand behind it, Metadata names only the proxy, and records go through it and back.
func TestLocalPlatformBehindTheProxy(t *testing.T) {
	var banner bytes.Buffer
	withPlatform(t, Options{Dir: t.TempDir(), Brokers: 3, Proxy: true, Out: &banner}, func(ctx context.Context, p *Platform) {
		if p.Proxy == nil || p.Bootstrap() != p.Proxy.Advertised || strings.Contains(p.Bootstrap(), ",") {
			t.Fatalf("bootstrap %q, want the proxy's address alone", p.Bootstrap())
		}
		if !strings.Contains(banner.String(), "bootstrap servers : "+p.Proxy.Advertised) {
			t.Fatalf("banner does not give the proxy as the bootstrap:\n%s", banner.String())
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(p.Bootstrap()), kgo.DefaultProduceTopic("via-proxy"), kgo.AllowAutoTopicCreation())
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		for i := 0; i < 50; i++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
				t.Fatalf("produce through the proxy: %v", err)
			}
		}
		meta, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if len(meta.Brokers) != 1 || len(p.Brokers) != 3 {
			t.Fatalf("%d brokers through the proxy (want 1, the proxy) for %d behind it (want 3)", len(meta.Brokers), len(p.Brokers))
		}
		for _, b := range meta.Brokers {
			if got := net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))); got != p.Proxy.Advertised {
				t.Fatalf("broker %d advertised as %s, want the proxy %s", b.NodeID, got, p.Proxy.Advertised)
			}
		}
		cons, err := kgo.NewClient(kgo.SeedBrokers(p.Bootstrap()), kgo.ConsumeTopics("via-proxy"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		for n := 0; n < 50; {
			fs := cons.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatalf("consume through the proxy: %v", err)
			}
			n += fs.NumRecords()
		}
	})
}
