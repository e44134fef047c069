// Package proxy holds the proxy's integration tests: the real proxy binary in front of real
// broker processes, against a real etcd and a real S3 server (tests/testenv), driven by Kafka
// clients written by others — kcat (librdkafka), franz-go, IBM/sarama, segmentio/kafka-go —
// that know only a proxy's address, and by hand-made frames.
package proxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kafscale/kafscale/tests/brokertest"
	"github.com/kafscale/kafscale/tests/proxytest"
	"github.com/kafscale/kafscale/tests/testenv"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// cluster is etcd, an S3 server, brokers and proxies of one test.
type cluster struct {
	etcd    *testenv.Etcd
	s3      *testenv.S3
	brokers []*brokertest.Broker
	proxies []*proxytest.Proxy
}

// startCluster starts n brokers (node ids 0..n-1) with extra broker settings and waits until
// every one is in the metadata snapshot.
func startCluster(t *testing.T, n int, brokerEnv ...string) *cluster {
	t.Helper()
	c := &cluster{etcd: testenv.StartEtcd(t), s3: testenv.StartS3(t)}
	for i := 0; i < n; i++ {
		c.addBroker(t, i, brokerEnv...)
	}
	return c
}

func (c *cluster) addBroker(t *testing.T, id int, env ...string) *brokertest.Broker {
	t.Helper()
	b := brokertest.Start(t, brokertest.Options{NodeID: id, Etcd: c.etcd, S3: c.s3, Env: append([]string{"KAFSCALE_LOG_LEVEL=info"}, env...)})
	c.brokers = append(c.brokers, b)
	return b
}

// addProxy starts a proxy following the cluster's etcd.
func (c *cluster) addProxy(t *testing.T, o proxytest.Options) *proxytest.Proxy {
	t.Helper()
	o.Etcd = c.etcd
	p := proxytest.Start(t, o)
	c.proxies = append(c.proxies, p)
	return p
}

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitFor is testenv.WaitFor.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, ctx, what, cond)
}

func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func createTopic(t *testing.T, ctx context.Context, addr, topic string, partitions int32) {
	t.Helper()
	cl := newClient(t, addr)
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 1
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 30000
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	// Every partition has a leader in the proxy's view before clients use it.
	waitFor(t, ctx, "leaders of "+topic, func() bool {
		m := metadata(t, ctx, cl, topic)
		if len(m.Topics) != 1 || len(m.Topics[0].Partitions) != int(partitions) {
			return false
		}
		for _, p := range m.Topics[0].Partitions {
			if p.Leader < 0 || p.ErrorCode != 0 {
				return false
			}
		}
		return true
	})
}

func metadata(t *testing.T, ctx context.Context, cl *kgo.Client, topic string) *kmsg.MetadataResponse {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	if topic != "" {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	return resp
}

// relay is a TCP forwarder in front of a target address, set with to (the target often
// starts after the relay, knowing the relay's port). It records every byte sent back to the
// clients and can cut its connections.
type relay struct {
	ln     net.Listener
	target atomic.Pointer[string]

	mu    sync.Mutex
	conns []net.Conn
	back  bytes.Buffer // bytes from the target towards clients
	count int          // connections accepted
}

func startRelay(t *testing.T) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(testenv.FreePort(t)))
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln}
	t.Cleanup(func() { ln.Close(); r.cut() })
	go r.serve()
	return r
}

// to sets the address new connections are forwarded to.
func (r *relay) to(addr string) { r.target.Store(&addr) }

func (r *relay) addr() string { return r.ln.Addr().String() }
func (r *relay) port() int    { return r.ln.Addr().(*net.TCPAddr).Port }

func (r *relay) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		target := r.target.Load()
		if target == nil {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", *target)
		if err != nil {
			c.Close()
			continue
		}
		r.mu.Lock()
		r.conns = append(r.conns, c, up)
		r.count++
		r.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		go func() {
			buf := make([]byte, 64<<10)
			for {
				n, err := up.Read(buf)
				if n > 0 {
					r.mu.Lock()
					r.back.Write(buf[:n])
					r.mu.Unlock()
					if _, werr := c.Write(buf[:n]); werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			c.Close()
		}()
	}
}

// cut closes every connection, as a broker closing idle connections would.
func (r *relay) cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
}

func (r *relay) accepted() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count
}

func (r *relay) received() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.back.Bytes())
}

// addressEncodings are the ways a host:port appears in Kafka responses: as text, and as a
// host string followed by an int32 port, in the classic (int16 length) and compact (uvarint
// length + 1) string encodings.
func addressEncodings(addr string) [][]byte {
	host, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	var p [4]byte
	binary.BigEndian.PutUint32(p[:], uint32(port))
	classic := binary.BigEndian.AppendUint16(nil, uint16(len(host)))
	classic = append(append(classic, host...), p[:]...)
	compact := binary.AppendUvarint(nil, uint64(len(host)+1))
	compact = append(append(compact, host...), p[:]...)
	return [][]byte{[]byte(addr), classic, compact}
}

// checkNoBrokerAddress fails if any broker's address appears in bytes clients received.
func checkNoBrokerAddress(t *testing.T, received []byte, brokers []*brokertest.Broker) {
	t.Helper()
	for _, b := range brokers {
		for _, enc := range addressEncodings(b.Addr) {
			if i := bytes.Index(received, enc); i >= 0 {
				t.Fatalf("a response seen by a client holds broker %d's address %s (%q at byte %d of %d)", b.NodeID, b.Addr, enc, i, len(received))
			}
		}
	}
}

// rawConn is a hand-driven Kafka connection.
type rawConn struct {
	t  *testing.T
	nc net.Conn
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc}
}

func (c *rawConn) send(req kmsg.Request, corr int32) {
	c.t.Helper()
	if _, err := c.nc.Write(kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw")).AppendRequest(nil, req, corr)); err != nil {
		c.t.Fatal(err)
	}
}

// read returns the correlation id and body of the next response; the body starts after the
// header's tag section when flexible is set.
func (c *rawConn) read(flexible bool) (int32, []byte, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(60 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(c.nc, size[:]); err != nil {
		return 0, nil, err
	}
	buf := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.nc, buf); err != nil {
		return 0, nil, err
	}
	body := buf[4:]
	if flexible {
		body = body[1:] // an empty tag section
	}
	return int32(binary.BigEndian.Uint32(buf)), body, nil
}

// roundTrip sends req and decodes its response.
func (c *rawConn) roundTrip(req kmsg.Request, corr int32) kmsg.Response {
	c.t.Helper()
	c.send(req, corr)
	got, body, err := c.read(req.IsFlexible() && req.Key() != 18)
	if err != nil {
		c.t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
	}
	if got != corr {
		c.t.Fatalf("%s: correlation id %d, want %d", kmsg.NameForKey(req.Key()), got, corr)
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(body); err != nil {
		c.t.Fatalf("%s: undecodable response: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp
}

// metricValue sums the samples of a series (name with its labels, or a prefix of them).
func metricValue(text, prefix string) float64 {
	var sum float64
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum += v
		}
	}
	return sum
}
