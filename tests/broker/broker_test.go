// Package broker holds the broker's integration tests: the real broker binary against a
// real etcd and a real S3 server (tests/testenv), driven by Kafka clients written by others
// — kcat (librdkafka), franz-go, IBM/sarama, segmentio/kafka-go — and by hand-made frames.
package broker

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/kafscale/kafscale/tests/brokertest"
	"github.com/kafscale/kafscale/tests/testenv"
)

// backend is a real etcd and a real S3 server shared by the brokers of one test.
type backend struct {
	etcd *testenv.Etcd
	s3   *testenv.S3
}

func startBackend(t *testing.T) *backend {
	t.Helper()
	return &backend{etcd: testenv.StartEtcd(t), s3: testenv.StartS3(t)}
}

// startBroker runs the broker binary on this backend with extra KAFSCALE_* overrides and
// waits until /readyz answers.
func (b *backend) startBroker(t *testing.T, nodeID int, extra ...string) *brokertest.Broker {
	t.Helper()
	return brokertest.Start(t, brokertest.Options{NodeID: nodeID, Etcd: b.etcd, S3: b.s3, Env: extra})
}

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func netListen(port int) (net.Listener, error) {
	return net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
}
