package proxy

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kafscale/kafscale/tests/brokertest"
	"github.com/kafscale/kafscale/tests/proxytest"
	"github.com/kafscale/kafscale/tests/testenv"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// produceOne sends a Produce v7 of one record to partition 0 of topic on conn.
func produceOne(t *testing.T, conn *rawConn, topic, value string, corr int32) int16 {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Version = 7
	req.Acks, req.TimeoutMillis = -1, 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = recordBatch(value)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return conn.roundTrip(req, corr).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
}

// TestBrokerClosesIdleConnection: the broker is reached through a relay that then closes every
// connection, as a broker or a load balancer closing idle connections does. The proxy notices,
// and the client's next request on its untouched connection succeeds at once.
func TestBrokerClosesIdleConnection(t *testing.T) {
	etcd, s3 := testenv.StartEtcd(t), testenv.StartS3(t)
	r := startRelay(t)
	b := brokertest.Start(t, brokertest.Options{NodeID: 0, Etcd: etcd, S3: s3,
		Env: []string{"KAFSCALE_BROKER_HOST=127.0.0.1", "KAFSCALE_BROKER_PORT=" + strconv.Itoa(r.port())}})
	r.to(b.Addr)
	p := proxytest.Start(t, proxytest.Options{Etcd: etcd})
	ctx := testContext(t, 2*time.Minute)
	createTopic(t, ctx, p.Addr, "idle", 1)

	conn := dialRaw(t, p.Addr)
	if code := produceOne(t, conn, "idle", "before", 1); code != 0 {
		t.Fatalf("produce before the cut: %v", kerr.ErrorForCode(code))
	}
	before := r.accepted()
	r.cut()
	testenv.Eventually(t, 30*time.Second, func() error {
		if n := metricValue(p.Metrics(), "kafscale_proxy_broker_connections "); n != 0 {
			return errorf("the proxy still counts %v broker connections after the broker closed them", n)
		}
		return nil
	})
	if code := produceOne(t, conn, "idle", "after", 2); code != 0 {
		t.Fatalf("the first produce after the broker closed its connections: %v", kerr.ErrorForCode(code))
	}
	if r.accepted() <= before {
		t.Fatalf("the proxy did not connect to the broker again (%d connections before, %d after)", before, r.accepted())
	}
	// Both records are there.
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.Version = 4
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "idle"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp = -1
	lt.Partitions = append(lt.Partitions, lp)
	lo.Topics = append(lo.Topics, lt)
	if got := conn.roundTrip(lo, 3).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]; got.ErrorCode != 0 || got.Offset != 2 {
		t.Fatalf("end offset %d (error %d), want 2", got.Offset, got.ErrorCode)
	}
}

// TestReadinessAndGracefulStop: /readyz is 503 while no broker is registered and 200 once one
// is; on SIGTERM it turns 503 at once while a long-polling fetch in flight is still answered,
// and the proxy exits with status 0.
func TestReadinessAndGracefulStop(t *testing.T) {
	etcd, s3 := testenv.StartEtcd(t), testenv.StartS3(t)
	p := proxytest.StartUnready(t, proxytest.Options{Etcd: etcd})
	// Once etcd is read (503 "reading the routing state" before), the reason is the brokers.
	testenv.Eventually(t, 30*time.Second, func() error {
		if code, body := p.Get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "no live broker") {
			return fmt.Errorf("/readyz without brokers: %d %q, want 503 naming the missing brokers", code, body)
		}
		return nil
	})
	if code, _ := p.Get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz without brokers: %d, want 200 (the process is fine)", code)
	}
	brokertest.Start(t, brokertest.Options{NodeID: 0, Etcd: etcd, S3: s3})
	p.WaitReady()
	ctx := testContext(t, 2*time.Minute)
	createTopic(t, ctx, p.Addr, "quiet", 1)

	conn := dialRaw(t, p.Addr)
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version = 11
	fetch.MaxWaitMillis, fetch.MinBytes, fetch.MaxBytes = 5000, 1, 1<<20
	fetch.SessionEpoch = -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "quiet"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	conn.send(fetch, 42)
	// The fetch is with the broker (nothing to read: it waits); stop the proxy.
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := metricValue(p.Metrics(), "kafscale_proxy_inflight_request_bytes"); n <= 0 {
			return errorf("the fetch is not in flight yet")
		}
		return nil
	})
	p.Signal(syscall.SIGTERM)
	testenv.Eventually(t, 10*time.Second, func() error {
		if code, body := p.Get("/readyz"); code != http.StatusServiceUnavailable {
			return errorf("/readyz after SIGTERM: %d %q, want 503", code, body)
		}
		return nil
	})
	corr, body, err := conn.read(false)
	if err != nil {
		t.Fatalf("the fetch in flight at SIGTERM was not answered: %v", err)
	}
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = 11
	if err := resp.ReadFrom(body); err != nil || corr != 42 {
		t.Fatalf("fetch answer: corr %d, %v", corr, err)
	}
	if got := resp.Topics[0].Partitions[0]; got.ErrorCode != 0 || got.HighWatermark != 0 {
		t.Fatalf("fetch answer: error %d, high watermark %d", got.ErrorCode, got.HighWatermark)
	}
	if err := p.Wait(30 * time.Second); err != nil {
		t.Fatalf("proxy exit after SIGTERM: %v, want status 0\n%s", err, p.LogTail())
	}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
