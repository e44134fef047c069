package broker

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafscale/kafscale/internal/recordbatch/rbtest"
)

// TestBadInput sends what a broken or hostile client might: each gets the Kafka error or the
// connection close a client expects, and the broker keeps serving a well-behaved client
// connected all along.
func TestBadInput(t *testing.T) {
	be := startBackend(t)
	b := be.startBroker(t, 0, "KAFSCALE_MAX_REQUEST_BYTES=1048576")
	createTopic(t, b.Addr, "bad", 1)
	good, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.DefaultProduceTopic("bad"))
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	stillServing := func(t *testing.T) {
		t.Helper()
		ctx := testContext(t, time.Minute)
		if err := good.ProduceSync(ctx, &kgo.Record{Value: []byte("still here")}).FirstErr(); err != nil {
			t.Fatalf("the well-behaved client failed: %v", err)
		}
	}
	stillServing(t)

	header := func(key, version int16) []byte {
		h := binary.BigEndian.AppendUint16(nil, uint16(key))
		h = binary.BigEndian.AppendUint16(h, uint16(version))
		h = binary.BigEndian.AppendUint32(h, 1)
		return binary.BigEndian.AppendUint16(h, 0xffff)
	}
	frame := func(body []byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	}
	closes := []struct {
		name  string
		bytes []byte
	}{
		{"oversized frame", binary.BigEndian.AppendUint32(nil, 2<<20)},
		{"negative frame size", []byte{0xff, 0xff, 0xff, 0xfe}},
		{"garbage", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{"unknown api key", frame(header(31000, 0))},
		{"unsupported produce version", frame(header(0, 1))},
		{"truncated metadata body", frame(append(header(3, 4), 0, 0, 0, 9))},
		{"huge tag count in a flexible body", frame(append(header(18, 3), 0, 2, 'a', 2, 'b', 0xff, 0xff, 0xff, 0xff, 0x0f))},
	}
	for _, tc := range closes {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, b.Addr)
			if _, err := c.Write(tc.bytes); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(bufio.NewReader(c), make([]byte, 4)); err == nil {
				t.Fatal("got an answer, want the connection closed")
			}
			stillServing(t)
		})
	}

	t.Run("bad CRC is CORRUPT_MESSAGE", func(t *testing.T) {
		batch := recordBatch("payload")
		batch[len(batch)-1] ^= 0x01
		p := produceRaw(t, b.Addr, "bad", batch)
		if p.ErrorCode != kerr.CorruptMessage.Code {
			t.Fatalf("error %v, want CORRUPT_MESSAGE", kerr.ErrorForCode(p.ErrorCode))
		}
		stillServing(t)
	})
	t.Run("valid hand-made batch is accepted", func(t *testing.T) {
		if p := produceRaw(t, b.Addr, "bad", recordBatch("payload")); p.ErrorCode != 0 {
			t.Fatalf("error %v", kerr.ErrorForCode(p.ErrorCode))
		}
	})
	t.Run("ApiVersions newer than supported", func(t *testing.T) {
		c := dial(t, b.Addr)
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = 5
		req.ClientSoftwareName, req.ClientSoftwareVersion = "test", "1"
		write(t, c, req)
		body := readResponse(t, c)
		resp := kmsg.NewPtrApiVersionsResponse() // v0
		if err := resp.ReadFrom(body); err != nil || resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) == 0 {
			t.Fatalf("err %v, code %d, %d keys; want v0 UNSUPPORTED_VERSION with the ranges", err, resp.ErrorCode, len(resp.ApiKeys))
		}
		stillServing(t)
	})
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func write(t *testing.T, c net.Conn, req kmsg.Request) {
	t.Helper()
	if _, err := c.Write(kmsg.NewRequestFormatter().AppendRequest(nil, req, 1)); err != nil {
		t.Fatal(err)
	}
}

// readResponse returns the body of the next response (after size and correlation id).
func readResponse(t *testing.T, c net.Conn) []byte {
	t.Helper()
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		t.Fatalf("read response: %v", err)
	}
	buf := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read response: %v", err)
	}
	return buf[4:]
}

// produceRaw sends one Produce v7 (acks=all) of a hand-made batch and returns the answer.
func produceRaw(t *testing.T, addr, topic string, batch []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	c := dial(t, addr)
	req := kmsg.NewPtrProduceRequest()
	req.Version = 7
	req.Acks, req.TimeoutMillis = -1, 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	write(t, c, req)
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = 7
	if err := resp.ReadFrom(readResponse(t, c)); err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0]
}

// recordBatch encodes a one-record RecordBatch v2 with a correct CRC-32C.
func recordBatch(value string) []byte {
	return rbtest.Strings(rbtest.Options{Timestamp: time.Now().UnixMilli()}, value)
}
