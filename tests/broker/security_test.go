package broker

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/kafscale/kafscale/internal/proxyproto"
	"github.com/kafscale/kafscale/tests/testenv"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestACLs: with KAFSCALE_ACL_ENABLED, a franz-go producer whose client id may write one
// topic produces to it, and is answered TOPIC_AUTHORIZATION_FAILED on another topic it may
// only describe; the broker keeps serving it, and counts and logs the denial. An invalid
// document fails closed, or open with KAFSCALE_ACL_FAIL_OPEN=true.
func TestACLs(t *testing.T) {
	be := startBackend(t)
	rules := `{"rules": [
	  {"principal": "User:kgo", "operations": ["Create"], "resource": {"type": "cluster"}},
	  {"principal": "User:producer", "operations": ["Write"], "resource": {"type": "topic", "name": "acl-ok"}},
	  {"principal": "User:producer", "operations": ["Describe"], "resource": {"type": "topic", "name": "acl-", "patternType": "prefixed"}}
	]}`
	b := be.startBroker(t, 0, "KAFSCALE_ACL_ENABLED=true", "KAFSCALE_ACL_CONFIG_JSON="+rules)
	createTopic(t, b.Addr, "acl-ok", 1)     // as User:kgo, allowed to create
	createTopic(t, b.Addr, "acl-denied", 1) // idem

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.ClientID("producer"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := testContext(t, time.Minute)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "acl-ok", Value: []byte("yes")}).FirstErr(); err != nil {
		t.Fatalf("produce to acl-ok: %v", err)
	}
	err = cl.ProduceSync(ctx, &kgo.Record{Topic: "acl-denied", Value: []byte("no")}).FirstErr()
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce to acl-denied: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "acl-ok", Value: []byte("still")}).FirstErr(); err != nil {
		t.Fatalf("produce to acl-ok after a denial: %v", err)
	}
	if m := b.Metrics(t); !strings.Contains(m, `kafscale_acl_denied_total{api="Produce"} 1`) {
		t.Fatalf("no Produce denial counted:\n%s", testenv.GrepLines(m, "kafscale_acl_denied_total"))
	}
	if log := b.LogTail(); !strings.Contains(log, "authorization denied") || !strings.Contains(log, "User:producer") {
		t.Fatalf("denial not logged with its principal:\n%s", log)
	}

	// An invalid document does not stop the broker: it fails closed (everything denied,
	// the problem logged naming the variable), or open with KAFSCALE_ACL_FAIL_OPEN=true.
	invalid := `{"rules":[{"principal":"User:a","operations":["Fly"],"resource":{"type":"topic","name":"t"}}]}`
	t.Run("invalid document fails closed", func(t *testing.T) {
		// A cluster of its own: brokers of one cluster forward nothing, but clients follow
		// partition leaders to the other brokers, whose ACLs differ.
		b := startBackend(t).startBroker(t, 0, "KAFSCALE_ACL_ENABLED=true", "KAFSCALE_ACL_CONFIG_JSON="+invalid)
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.ClientID("kgo"), kgo.RecordRetries(1))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		err = cl.ProduceSync(testContext(t, time.Minute), &kgo.Record{Topic: "acl-ok", Value: []byte("no")}).FirstErr()
		// Denied from the first request on: the idempotent producer's InitProducerID
		// (CLUSTER_AUTHORIZATION_FAILED) or the topic (TOPIC_AUTHORIZATION_FAILED).
		if !errors.Is(err, kerr.TopicAuthorizationFailed) && !errors.Is(err, kerr.ClusterAuthorizationFailed) {
			t.Fatalf("produce with an invalid ACL document: %v, want an authorization error", err)
		}
		if log := b.LogTail(); !strings.Contains(log, "failing closed") || !strings.Contains(log, "KAFSCALE_ACL_CONFIG_JSON: rule 0") {
			t.Fatalf("the invalid document is not logged naming its variable:\n%s", log)
		}
	})
	t.Run("invalid document with fail-open allows", func(t *testing.T) {
		b := startBackend(t).startBroker(t, 0, "KAFSCALE_ACL_ENABLED=true", "KAFSCALE_ACL_JSON="+invalid, "KAFSCALE_ACL_FAIL_OPEN=true")
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.ClientID("anyone"), kgo.AllowAutoTopicCreation())
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if err := cl.ProduceSync(testContext(t, time.Minute), &kgo.Record{Topic: "acl-denied", Value: []byte("yes")}).FirstErr(); err != nil {
			t.Fatalf("produce with fail-open: %v", err)
		}
		if log := b.LogTail(); !strings.Contains(log, "KAFSCALE_ACL_FAIL_OPEN=true") || !strings.Contains(log, "KAFSCALE_ACL_JSON: rule 0") {
			t.Fatalf("fail-open not logged:\n%s", log)
		}
	})
}

// TestProxyProtocolRequired: with KAFSCALE_PROXY_PROTOCOL=true a raw connection without the
// header is closed unanswered; a franz-go client whose connections start with a v2 header
// works, and its principal is the header's source address (the only one the ACLs allow).
func TestProxyProtocolRequired(t *testing.T) {
	be := startBackend(t)
	rules := `{"rules": [
	  {"principal": "User:10.1.2.3", "operations": ["Write", "Create"], "resource": {"type": "topic", "name": "pp"}}
	]}`
	b := be.startBroker(t, 0, "KAFSCALE_PROXY_PROTOCOL=true", "KAFSCALE_PRINCIPAL_SOURCE=proxy_addr",
		"KAFSCALE_ACL_ENABLED=true", "KAFSCALE_ACL_CONFIG_JSON="+rules)

	// No header: closed without an answer.
	c := dial(t, b.Addr)
	write(t, c, kmsg.NewPtrApiVersionsRequest())
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil || (!errors.Is(err, io.EOF) && !isReset(err)) {
		t.Fatalf("read %d bytes, err %v; want the connection closed", n, err)
	}
	if m := b.Metrics(t); !strings.Contains(m, `kafscale_connections_rejected_total{reason="proxy_protocol"} 1`) {
		t.Fatalf("rejection not counted:\n%s", testenv.GrepLines(m, "kafscale_connections_rejected_total"))
	}

	ctx := testContext(t, time.Minute)
	// Through a "proxy" at 10.1.2.3: the topic is auto-created (Create) and written (Write).
	cl := proxiedClient(t, b.Addr, "10.1.2.3")
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "pp", Value: []byte("via proxy")}).FirstErr(); err != nil {
		t.Fatalf("produce as User:10.1.2.3: %v", err)
	}
	// The same client id from another address is someone else.
	other := proxiedClient(t, b.Addr, "10.9.9.9")
	err := other.ProduceSync(ctx, &kgo.Record{Topic: "pp", Value: []byte("no")}).FirstErr()
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce as User:10.9.9.9: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	if log := b.LogTail(); !strings.Contains(log, "User:10.9.9.9") {
		t.Fatalf("denial does not name the header's address:\n%s", log)
	}
}

// proxiedClient is a franz-go client whose every connection starts with a PROXY v2 header
// claiming src as the client address.
func proxiedClient(t *testing.T, seed, src string) *kgo.Client {
	t.Helper()
	from := netip.AddrPortFrom(netip.MustParseAddr(src), 40000)
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.AllowAutoTopicCreation(),
		kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
			nc, err := (&net.Dialer{}).DialContext(ctx, network, host)
			if err != nil {
				return nil, err
			}
			to, _ := netip.ParseAddrPort(nc.RemoteAddr().String())
			if _, err := nc.Write(proxyproto.AppendV2(nil, from, netip.AddrPortFrom(netip.IPv4Unspecified(), to.Port()))); err != nil {
				nc.Close()
				return nil, err
			}
			return nc, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func isReset(err error) bool { return strings.Contains(err.Error(), "connection reset") }
