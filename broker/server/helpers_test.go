package server

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafscale/kafscale/broker/logapi"
	"github.com/kafscale/kafscale/internal/recordbatch/rbtest"
)

// testBroker is a Server on a loopback port with in-memory Log and Cluster.
type testBroker struct {
	srv     *Server
	log     *memLog
	cluster *memCluster
	addr    string
}

// testConfig is the configuration handler tests start from: 1 MiB frames, the broker's
// pipelining bound, topics auto-created with one partition, synchronous produce, admin APIs.
func testConfig() Config {
	return Config{NodeID: 0, MaxRequestBytes: 1 << 20, MaxInflightPerConn: 64, AutoCreateTopics: true,
		AutoCreatePartitions: 1, ProduceSyncFlush: true, AllowAdminAPIs: true}
}

// mustNew is New for a configuration the test knows to be valid.
func mustNew(t testing.TB, cfg Config, log logapi.Log, cluster Cluster) *Server {
	t.Helper()
	srv, err := New(cfg, log, cluster, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

func startTestBroker(t *testing.T, mutate ...func(*Config)) *testBroker {
	t.Helper()
	cfg := testConfig()
	for _, m := range mutate {
		m(&cfg)
	}
	return startServer(t, cfg, nil)
}

// startServer serves cfg on a loopback port with the in-memory log and cluster, and g as
// its group coordinator (nil: none), set before Serve.
func startServer(t *testing.T, cfg Config, g Groups) *testBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host, portStr, _ := net.SplitHostPort(ln.Addr().String())
	port, _ := strconv.Atoi(portStr)
	b := &testBroker{log: newMemLog(), cluster: newMemCluster(host, int32(port)), addr: ln.Addr().String()}
	b.srv = mustNew(t, cfg, b.log, b.cluster)
	if g != nil {
		b.srv.SetGroups(g)
	}
	served := make(chan error, 1)
	go func() { served <- b.srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != ErrServerClosed {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return b
}

func (b *testBroker) createTopic(t *testing.T, name string, partitions int32) {
	t.Helper()
	if err := b.cluster.CreateTopic(context.Background(), name, partitions, nil); err != nil {
		t.Fatal(err)
	}
}

// rawConn speaks the wire protocol by hand, so tests control framing and pipelining.
type rawConn struct {
	t    *testing.T
	nc   net.Conn
	r    *bufio.Reader
	corr int32
	sent map[int32]kmsg.Request
}

func (b *testBroker) dial(t *testing.T) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, r: bufio.NewReader(nc), sent: map[int32]kmsg.Request{}}
}

// send writes one request and returns its correlation id. A request at version 0 goes out
// at the highest registered version; sendExact keeps the version as set.
func (c *rawConn) send(req kmsg.Request) int32 {
	c.t.Helper()
	return c.sendExact(c.setMax(req))
}

func (c *rawConn) sendExact(req kmsg.Request) int32 {
	c.t.Helper()
	c.corr++
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("test")).AppendRequest(nil, req, c.corr)
	c.writeRaw(frame)
	c.sent[c.corr] = req
	return c.corr
}

func (c *rawConn) writeRaw(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// recv reads the next response and decodes it as the answer to the request it names.
func (c *rawConn) recv() (int32, kmsg.Response) {
	c.t.Helper()
	corr, body, err := c.readFrame()
	if err != nil {
		c.t.Fatalf("read response: %v", err)
	}
	req, ok := c.sent[corr]
	if !ok {
		c.t.Fatalf("response to unknown correlation id %d", corr)
	}
	delete(c.sent, corr)
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() && req.Key() != apiVersionsKey {
		b := kbin.Reader{Src: body}
		kmsg.SkipTags(&b)
		body = b.Src
	}
	if err := resp.ReadFrom(body); err != nil {
		c.t.Fatalf("decode %s response: %v", kmsg.NameForKey(req.Key()), err)
	}
	return corr, resp
}

func (c *rawConn) readFrame() (int32, []byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(c.r, size[:]); err != nil {
		return 0, nil, err
	}
	buf := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.r, buf); err != nil {
		return 0, nil, err
	}
	return int32(binary.BigEndian.Uint32(buf)), buf[4:], nil
}

// roundTrip sends a request (see send) and returns its response.
func (c *rawConn) roundTrip(req kmsg.Request) kmsg.Response {
	c.t.Helper()
	return c.roundTripExact(c.setMax(req))
}

func (c *rawConn) setMax(req kmsg.Request) kmsg.Request {
	if req.GetVersion() == 0 {
		if reg, ok := handlers[req.Key()]; ok {
			req.SetVersion(reg.max)
		}
	}
	return req
}

// roundTripExact sends a request at exactly its set version and returns its response.
func (c *rawConn) roundTripExact(req kmsg.Request) kmsg.Response {
	c.t.Helper()
	want := c.sendExact(req)
	got, resp := c.recv()
	if got != want {
		c.t.Fatalf("response correlation id %d, want %d", got, want)
	}
	return resp
}

// expectClosed asserts that the broker closes the connection without answering.
func (c *rawConn) expectClosed() {
	c.t.Helper()
	if corr, _, err := c.readFrame(); err == nil {
		c.t.Fatalf("got a response (correlation id %d), want the connection closed", corr)
	}
}

// makeBatch encodes a RecordBatch v2 holding one record per value (key k<i>, one header),
// all at timestamp ts, with a valid CRC.
func makeBatch(ts int64, values ...string) []byte {
	return rbtest.Strings(rbtest.Options{Timestamp: ts, SameTimestamp: true, KeyPrefix: "k",
		Headers: []kmsg.Header{{Key: "h", Value: []byte("v")}}}, values...)
}

func produceRequest(acks int16, topic string, partition int32, batch []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks = acks
	req.TimeoutMillis = 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func fetchRequest(topic string, partition int32, offset int64, maxWaitMillis, minBytes int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = maxWaitMillis
	req.MinBytes = minBytes
	req.MaxBytes = 1 << 20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = partition
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}
