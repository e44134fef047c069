package proxy

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kafscale/kafscale/tests/proxytest"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestProxyProtocolACLs: brokers require the PROXY protocol and take the principal from its
// header (proxy_addr); the proxy sends each client's address. Two clients on different
// loopback addresses go through the same proxy: the one the ACLs allow produces, the other is
// answered TOPIC_AUTHORIZATION_FAILED — the brokers decided by the client's address, not the
// proxy's.
func TestProxyProtocolACLs(t *testing.T) {
	rules := `{"rules": [
	  {"principal": "User:127.0.0.3", "operations": ["All"], "resource": {"type": "topic", "name": "pp"}},
	  {"principal": "User:127.0.0.3", "operations": ["Create"], "resource": {"type": "cluster"}},
	  {"principal": "User:127.0.0.4", "operations": ["Describe"], "resource": {"type": "topic", "name": "pp"}}
	]}`
	c := startCluster(t, 2, "KAFSCALE_PROXY_PROTOCOL=true", "KAFSCALE_PRINCIPAL_SOURCE=proxy_addr",
		"KAFSCALE_ACL_ENABLED=true", "KAFSCALE_ACL_CONFIG_JSON="+rules)
	p := c.addProxy(t, proxytest.Options{Env: []string{"KAFSCALE_PROXY_PROXY_PROTOCOL=true"}})
	ctx := testContext(t, 2*time.Minute)
	from := func(ip string) kgo.Opt {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
		return kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
			return d.DialContext(ctx, network, host)
		})
	}
	allowed := newClient(t, p.Addr, from("127.0.0.3"), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("pp"))
	waitFor(t, ctx, "the allowed client's produce", func() bool {
		err := allowed.ProduceSync(ctx, &kgo.Record{Value: []byte("from .3")}).FirstErr()
		if err != nil {
			t.Logf("produce from 127.0.0.3: %v", err)
		}
		return err == nil
	})
	denied := newClient(t, p.Addr, from("127.0.0.4"), kgo.DefaultProduceTopic("pp"), kgo.RecordRetries(1), kgo.DisableIdempotentWrite())
	err := denied.ProduceSync(ctx, &kgo.Record{Value: []byte("from .4")}).FirstErr()
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce from 127.0.0.4 through the proxy: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	// And the allowed client still produces after the other's denial.
	if err := allowed.ProduceSync(ctx, &kgo.Record{Value: []byte("again")}).FirstErr(); err != nil {
		t.Fatalf("produce from 127.0.0.3 after the denial: %v", err)
	}
	for _, b := range c.brokers {
		if log := b.LogTail(); containsAll(log, "ACL denied", "User:127.0.0.4") {
			return
		}
	}
	t.Fatal("no broker logged the denial of User:127.0.0.4")
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
