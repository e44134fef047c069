package proxy

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kafscale/kafscale/tests/proxytest"
	"github.com/kafscale/kafscale/tests/testenv"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestListenersAdvertiseTheirOwnEndpoint: one proxy with two listeners, as the chart runs it
// on kind: the main one advertises external.test:9092 (what a host outside the cluster
// reaches), the internal one internal.test:9094 (the Service's name pods resolve). A
// franz-go idempotent producer and a committing consumer group use each listener; every
// address a client dials and every byte it receives name only its own listener's endpoint.
func TestListenersAdvertiseTheirOwnEndpoint(t *testing.T) {
	c := startCluster(t, 3)
	internalAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(t)))
	mainRelay, internalRelay := startRelay(t), startRelay(t)
	internalRelay.to(internalAddr)
	p := c.addProxy(t, proxytest.Options{Env: []string{
		"KAFSCALE_PROXY_ADVERTISED_HOST=external.test",
		"KAFSCALE_PROXY_ADVERTISED_PORT=9092",
		"KAFSCALE_PROXY_INTERNAL_LISTEN_ADDR=" + internalAddr,
		"KAFSCALE_PROXY_INTERNAL_ADVERTISED_HOST=internal.test",
		"KAFSCALE_PROXY_INTERNAL_ADVERTISED_PORT=9094",
	}})
	mainRelay.to(p.Addr)
	ctx := testContext(t, 5*time.Minute)
	createTopic(t, ctx, c.brokers[0].Addr, "listeners", 6)

	listeners := []struct {
		name, advertised, other string
		relay                   *relay
	}{
		{"main", "external.test:9092", "internal.test", mainRelay},
		{"internal", "internal.test:9094", "external.test", internalRelay},
	}
	for _, l := range listeners {
		t.Run(l.name, func(t *testing.T) {
			// The dialer is this client's name resolution: its listener's advertised endpoint
			// is the relay in front of that listener; any other address is recorded and refused.
			var mu sync.Mutex
			var dialled []string
			var d net.Dialer
			dial := func(ctx context.Context, network, host string) (net.Conn, error) {
				mu.Lock()
				dialled = append(dialled, host)
				mu.Unlock()
				if host == l.advertised || host == l.relay.addr() {
					return d.DialContext(ctx, network, l.relay.addr())
				}
				return nil, fmt.Errorf("%s: not this listener's endpoint", host)
			}
			opts := []kgo.Opt{kgo.Dialer(dial)}
			cl := newClient(t, l.relay.addr(), opts...)
			m := metadata(t, ctx, cl, "listeners")
			if len(m.Brokers) != 1 || net.JoinHostPort(m.Brokers[0].Host, strconv.Itoa(int(m.Brokers[0].Port))) != l.advertised {
				t.Fatalf("Metadata through the %s listener: brokers %+v, want one at %s", l.name, m.Brokers, l.advertised)
			}

			want := makeRecords(l.name, 2000)
			prod := newClient(t, l.relay.addr(), append(opts, kgo.DefaultProduceTopic("listeners"), kgo.RequiredAcks(kgo.AllISRAcks()))...)
			recs := make([]*kgo.Record, 0, len(want))
			for _, r := range want {
				recs = append(recs, &kgo.Record{Key: []byte(r.key), Value: []byte(r.value)})
			}
			if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatalf("produce through the %s listener: %v", l.name, err)
			}
			cons := newClient(t, l.relay.addr(), append(opts, kgo.ConsumeTopics("listeners"), kgo.ConsumerGroup("listeners-"+l.name),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())...)
			var got []record
			for len(got) < len(want) {
				fs := cons.PollFetches(ctx)
				if err := fs.Err0(); err != nil {
					t.Fatalf("poll through the %s listener: %v (after %d records)", l.name, err, len(got))
				}
				fs.EachRecord(func(r *kgo.Record) {
					if bytes.HasPrefix(r.Key, []byte(l.name+"-")) {
						got = append(got, record{partition: r.Partition, offset: r.Offset, key: string(r.Key), value: string(r.Value)})
					}
				})
				if err := cons.CommitUncommittedOffsets(ctx); err != nil {
					t.Fatalf("commit through the %s listener: %v", l.name, err)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("read %d of %d records through the %s listener", len(got), len(want), l.name)
			}

			mu.Lock()
			defer mu.Unlock()
			for _, h := range dialled {
				if h != l.advertised && h != l.relay.addr() {
					t.Errorf("a client of the %s listener dialled %s", l.name, h)
				}
			}
			back := l.relay.received()
			if !bytes.Contains(back, []byte(l.advertised[:len(l.advertised)-5])) {
				t.Errorf("the %s listener's clients never received its host %s", l.name, l.advertised)
			}
			if bytes.Contains(back, []byte(l.other)) {
				t.Errorf("the %s listener's clients received the other listener's host %s", l.name, l.other)
			}
			for _, b := range c.brokers {
				for _, enc := range addressEncodings(b.Addr) {
					if bytes.Contains(back, enc) {
						t.Errorf("the %s listener's clients received broker address %s", l.name, b.Addr)
					}
				}
			}
		})
	}
}
