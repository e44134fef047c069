package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafscale/kafscale/internal/flexcheck"
)

func TestApiVersionsListsExactlyTheRegisteredHandlers(t *testing.T) {
	b := startTestBroker(t)
	c := b.dial(t)
	for _, v := range []int16{0, 1, 2, 3} {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		req.ClientSoftwareName, req.ClientSoftwareVersion = "test", "1"
		resp := c.roundTripExact(req).(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != 0 {
			t.Fatalf("v%d: error %d", v, resp.ErrorCode)
		}
		if len(resp.ApiKeys) != len(handlers) {
			t.Fatalf("v%d: %d keys advertised, %d registered", v, len(resp.ApiKeys), len(handlers))
		}
		for _, k := range resp.ApiKeys {
			reg := handlers[k.ApiKey]
			if reg.handle == nil || reg.min != k.MinVersion || reg.max != k.MaxVersion {
				t.Errorf("v%d: advertised %s v%d-v%d, registered %+v", v, kmsg.NameForKey(k.ApiKey), k.MinVersion, k.MaxVersion, reg)
			}
		}
	}
	// Idempotence yes (InitProducerId), transactions no.
	if _, ok := handlers[22]; !ok {
		t.Error("InitProducerId is not registered")
	}
	for _, key := range []int16{24, 25, 26, 28} { // AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit
		if _, ok := handlers[key]; ok {
			t.Errorf("%s is registered; transactions are not offered", kmsg.NameForKey(key))
		}
	}
}

func TestApiVersionsTooNewGetsV0UnsupportedVersionAndTheConnectionStays(t *testing.T) {
	b := startTestBroker(t)
	c := b.dial(t)
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 5 // newer than the v3 we register
	req.ClientSoftwareName, req.ClientSoftwareVersion = "test", "1"
	corr := c.sendExact(req)
	gotCorr, body, err := c.readFrame()
	if err != nil || gotCorr != corr {
		t.Fatalf("read: corr %d err %v", gotCorr, err)
	}
	delete(c.sent, corr)
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("decode v0: %v", err)
	}
	if resp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("error code %d, want UNSUPPORTED_VERSION", resp.ErrorCode)
	}
	var max int16 = -1
	for _, k := range resp.ApiKeys {
		if k.ApiKey == apiVersionsKey {
			max = k.MaxVersion
		}
	}
	if max != 3 {
		t.Fatalf("ApiVersions advertised up to v%d, want v3", max)
	}
	// Same connection, supported version.
	req.Version = 3
	if r := c.roundTripExact(req).(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 {
		t.Fatalf("retry at v3: error %d", r.ErrorCode)
	}
}

func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	frame := func(body []byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	}
	header := func(key, version int16) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(key))
		b = binary.BigEndian.AppendUint16(b, uint16(version))
		b = binary.BigEndian.AppendUint32(b, 7)
		return binary.BigEndian.AppendUint16(b, 0xffff) // null client id
	}
	cases := []struct {
		name  string
		bytes []byte
	}{
		{"oversized frame", binary.BigEndian.AppendUint32(nil, 1<<20+1)},
		{"negative frame size", binary.BigEndian.AppendUint32(nil, 0x80000000)},
		{"frame shorter than a header", frame([]byte{0, 3, 0})},
		{"unknown api key", frame(header(9999, 0))},
		{"unsupported metadata version", frame(header(metadataKey, 99))},
		{"truncated header", frame(append(header(metadataKey, 1)[:8], 0x00, 0x09, 'a'))},
		{"truncated metadata body", frame(append(header(metadataKey, 1), 0, 0, 0, 5, 0, 3))},
		{"produce body of garbage", frame(append(header(produceKey, 7), 0xde, 0xad, 0xbe, 0xef))},
		{"flexible header with a bad tag section", frame(append(header(metadataKey, 12), 0x05, 0x01))},
		// A 5-byte tag count with no tags behind it: kmsg alone would loop for minutes.
		{"huge tag count in a flexible header", frame(append(header(metadataKey, 12), 0xff, 0xff, 0xff, 0xff, 0x0f))},
		{"huge tag count in a flexible body", frame(append(header(apiVersionsKey, 3), 0x00, 2, 'a', 2, 'b', 0xff, 0xff, 0xff, 0xff, 0x0f))},
	}
	b := startTestBroker(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := b.dial(t)
			good := b.dial(t)
			bad.writeRaw(tc.bytes)
			bad.expectClosed()
			if r := good.roundTrip(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 {
				t.Fatalf("other connection: error %d", r.ErrorCode)
			}
		})
	}
}

func TestPipelinedRequestsAreAnsweredInOrder(t *testing.T) {
	b := startTestBroker(t)
	b.createTopic(t, "orders", 1)
	c := b.dial(t)
	// A long-polling fetch first: it only returns once the produce behind it lands, so a
	// broker answering out of order would send the produce and metadata answers first.
	ids := []int32{
		c.send(fetchRequest("orders", 0, 0, 60000, 1)),
		c.send(kmsg.NewPtrMetadataRequest()),
		c.send(kmsg.NewPtrApiVersionsRequest()),
	}
	other := b.dial(t)
	if r := other.roundTrip(produceRequest(-1, "orders", 0, makeBatch(1, "a"))).(*kmsg.ProduceResponse); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("produce: %v", kerr.ErrorForCode(r.Topics[0].Partitions[0].ErrorCode))
	}
	for _, want := range ids {
		got, resp := c.recv()
		if got != want {
			t.Fatalf("answer %d came before %d", got, want)
		}
		if f, ok := resp.(*kmsg.FetchResponse); ok && len(f.Topics[0].Partitions[0].RecordBatches) == 0 {
			t.Fatal("long-polling fetch returned without the produced batch")
		}
	}
}

func TestReadFrameGrowsAsBytesArrive(t *testing.T) {
	for _, size := range []int{8, 1000, 64 << 10, 64<<10 + 1, 1<<20 + 7} {
		want := make([]byte, size)
		for i := range want {
			want[i] = byte(i * 7)
		}
		got, err := readFrame(bytes.NewReader(want), size)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("size %d: err %v, equal %v", size, err, bytes.Equal(got, want))
		}
	}
	if _, err := readFrame(bytes.NewReader(make([]byte, 100)), 1<<20); err == nil {
		t.Fatal("short input: no error")
	}
}

// Kept frames stay charged to the shared memory (the read cache) while they wait for reuse:
// the cache holds exactly the capacity of the buffers kept, get hands the charge over to the
// frame's holder, and buffers dropped for room are uncharged. get picks the smallest buffer
// that fits, so a large buffer stays for a large frame.
func TestBufListChargesKeptBuffers(t *testing.T) {
	mem := &countingMemory{}
	l := &bufList{max: 100, mem: mem}
	l.put(make([]byte, 10, 60))
	l.put(make([]byte, 0, 30))
	if mem.held != 90 || l.bytes != 90 {
		t.Fatalf("two kept buffers: memory %d, list %d, want 90", mem.held, l.bytes)
	}
	if b := l.get(25); cap(b) != 30 {
		t.Fatalf("get(25): cap %d, want the 30-byte buffer (smallest that fits)", cap(b))
	}
	if mem.held != 60 {
		t.Fatalf("after get: memory %d, want 60 (only the kept buffer)", mem.held)
	}
	l.put(make([]byte, 0, 70)) // 130 > 100: the 60 goes
	if mem.held != 70 || l.bytes != 70 || len(l.free) != 1 {
		t.Fatalf("after a larger put: memory %d, list %d in %d buffers, want 70 in 1", mem.held, l.bytes, len(l.free))
	}
	l.put(make([]byte, 0, 50)) // smaller than what it would displace: dropped, not charged
	l.put(make([]byte, 0, 101))
	if mem.held != 70 {
		t.Fatalf("after dropped puts: memory %d, want 70", mem.held)
	}
	if b := l.get(71); b != nil || mem.held != 70 {
		t.Fatalf("get(71): cap %d, memory %d; want nothing, 70", cap(b), mem.held)
	}
}

// A new frame buffer is rounded up by less than a quarter above 64 KiB, to a size later
// frames of about the same size fit in; small frames get exactly their size.
func TestFrameCapRoundsLargeFrames(t *testing.T) {
	for _, size := range []int{8, 1000, smallFrame, smallFrame + 1, 100 << 10, 5<<20 + 3, 17 << 20, 33<<20 - 1, 64 << 20} {
		c := frameCap(size)
		if c < size || (size > smallFrame && float64(c) > 1.25*float64(size)) || (size <= smallFrame && c != size) {
			t.Errorf("frameCap(%d) = %d", size, c)
		}
	}
	if frameCap(17<<20) != frameCap(19<<20) {
		t.Errorf("17 and 19 MiB frames get buffers of %d and %d bytes, want one size", frameCap(17<<20), frameCap(19<<20))
	}
}

// The frame free list hands out only buffers large enough, never more than max bytes of them
// kept, and prefers keeping larger buffers when full.
func TestBufListBounds(t *testing.T) {
	l := &bufList{max: 100}
	if b := l.get(10); b != nil {
		t.Fatal("empty list handed out a buffer")
	}
	l.put(make([]byte, 5, 40))
	l.put(make([]byte, 0, 50))
	if b := l.get(45); cap(b) != 50 || len(b) != 0 {
		t.Fatalf("get(45): cap %d len %d, want the 50-byte buffer, empty", cap(b), len(b))
	}
	if b := l.get(45); b != nil {
		t.Fatalf("get(45) again: cap %d, want nothing (only 40 left)", cap(b))
	}
	l.put(make([]byte, 0, 50))
	l.put(make([]byte, 0, 30)) // 40+50+30 > 100: smaller than all kept, dropped
	if l.bytes != 90 || len(l.free) != 2 {
		t.Fatalf("kept %d bytes in %d buffers, want 90 in 2", l.bytes, len(l.free))
	}
	l.put(make([]byte, 0, 60)) // 150 bytes: the 40 goes, then the 50 (still over 100)
	if l.bytes != 60 || len(l.free) != 1 {
		t.Fatalf("kept %d bytes in %d buffers, want only the 60", l.bytes, len(l.free))
	}
	if b := l.get(41); b == nil {
		t.Fatal("no buffer over 40 after the 60 came in")
	}
	l.put(make([]byte, 0, 101)) // larger than the whole list
	for _, f := range l.free {
		if cap(f) == 101 {
			t.Fatal("kept a buffer larger than the bound")
		}
	}
}

// Every flexible version the broker answers has its tag sections checked before kmsg decodes
// the body (a version without a flexcheck schema would refuse every such request).
func TestEveryFlexibleVersionIsChecked(t *testing.T) {
	for _, reg := range supportedKeys() {
		for v := reg.min; v <= reg.max; v++ {
			req := kmsg.RequestForKey(reg.key)
			req.SetVersion(v)
			if req.IsFlexible() && !flexcheck.Covers(reg.key, v) {
				t.Errorf("%s v%d is flexible and registered, but flexcheck has no schema for it", kmsg.NameForKey(reg.key), v)
			}
		}
	}
}

// A huge declared tag count, at the end of a body or in a nested structure, is refused
// before kmsg decodes the body (kmsg would loop for up to a minute), and the same request
// with an honest count decodes.
func TestHugeTagCountsAreRefusedBeforeDecoding(t *testing.T) {
	srv := mustNew(t, Config{MaxRequestBytes: 1 << 20, MaxInflightPerConn: 64, AutoCreatePartitions: 1}, newMemLog(), newMemCluster("127.0.0.1", 9092))
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	c := newConn(srv, server)
	formatter := kmsg.NewRequestFormatter(kmsg.FormatterClientID("t"))
	encode := func(req kmsg.Request) []byte { return formatter.AppendRequest(nil, req, 1)[4:] }

	produce := produceRequest(-1, "a", 0, makeBatch(1, "x"))
	produce.SetVersion(9)
	produce.Topics[0].Partitions[0].UnknownTags.Set(99, []byte("tag"))
	good := encode(produce)
	mark := bytes.Index(good, []byte{1, 99, 3, 't', 'a', 'g'}) // the partition's tag section
	if mark < 0 {
		t.Fatal("partition tag section not found")
	}
	if _, _, _, err := c.decode(good); err != nil {
		t.Fatalf("produce v9 with one partition tag: %v", err)
	}
	nested := append(append(append([]byte{}, good[:mark]...), 0xff, 0xff, 0xff, 0xff, 0x0f), good[mark+1:]...)
	api := kmsg.NewPtrApiVersionsRequest()
	api.SetVersion(3)
	api.ClientSoftwareName, api.ClientSoftwareVersion = "a", "b"
	atEnd := encode(api)
	atEnd = append(atEnd[:len(atEnd)-1], 0xff, 0xff, 0xff, 0xff, 0x0f)
	for name, frame := range map[string][]byte{"produce v9, partition tags": nested, "api versions v3, body tags": atEnd} {
		if _, _, _, err := c.decode(frame); !errors.Is(err, flexcheck.ErrTooManyTags) {
			t.Errorf("%s: decode returned %v, want flexcheck.ErrTooManyTags", name, err)
		}
	}
}
