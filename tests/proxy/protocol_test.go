package proxy

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sort"
	"testing"
	"time"

	"github.com/kafscale/kafscale/proxy/server"
	"github.com/kafscale/kafscale/tests/proxytest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestProtocol: what the proxy answers itself and how it splits and merges, against three
// brokers: ApiVersions ranges, a too-new ApiVersions, pipelined mixed requests, groups on
// different coordinators, and bad frames.
func TestProtocol(t *testing.T) {
	c := startCluster(t, 3)
	p := c.addProxy(t, proxytest.Options{})
	ctx := testContext(t, 4*time.Minute)
	createTopic(t, ctx, p.Addr, "proto", 12)

	t.Run("ApiVersions is the intersection", func(t *testing.T) {
		conn := dialRaw(t, p.Addr)
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = 3
		req.ClientSoftwareName, req.ClientSoftwareVersion = "test", "1"
		advertised := conn.roundTrip(req, 1).(*kmsg.ApiVersionsResponse)
		if advertised.ErrorCode != 0 || len(advertised.ApiKeys) < 20 {
			t.Fatalf("ApiVersions through the proxy: error %d, %d keys", advertised.ErrorCode, len(advertised.ApiKeys))
		}
		brokerRanges := make([]map[int16][2]int16, len(c.brokers))
		for i, b := range c.brokers {
			resp := dialRaw(t, b.Addr).roundTrip(req, 1).(*kmsg.ApiVersionsResponse)
			brokerRanges[i] = map[int16][2]int16{}
			for _, k := range resp.ApiKeys {
				brokerRanges[i][k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
			}
		}
		seen := map[int16]bool{}
		for _, k := range advertised.ApiKeys {
			seen[k.ApiKey] = true
			lo, hi, ok := server.ProxyRange(k.ApiKey)
			if !ok || k.MinVersion < lo || k.MaxVersion > hi || k.MinVersion > k.MaxVersion {
				t.Errorf("%s: advertised v%d-v%d, the proxy handles v%d-v%d (%v)", kmsg.NameForKey(k.ApiKey), k.MinVersion, k.MaxVersion, lo, hi, ok)
			}
			for i, br := range brokerRanges {
				r, ok := br[k.ApiKey]
				if !ok || k.MinVersion < r[0] || k.MaxVersion > r[1] {
					t.Errorf("%s: advertised v%d-v%d, broker %d supports %v (%v)", kmsg.NameForKey(k.ApiKey), k.MinVersion, k.MaxVersion, i, r, ok)
				}
			}
		}
		// Every key the brokers and the proxy share is advertised, with the full overlap.
		for key, r := range brokerRanges[0] {
			lo, hi, ok := server.ProxyRange(key)
			if !ok {
				continue
			}
			if !seen[key] {
				t.Errorf("%s is served by the brokers and the proxy but not advertised", kmsg.NameForKey(key))
			}
			for _, k := range advertised.ApiKeys {
				if k.ApiKey == key && (k.MinVersion != max(lo, r[0]) || k.MaxVersion != min(hi, r[1])) {
					t.Errorf("%s: advertised v%d-v%d, the overlap is v%d-v%d", kmsg.NameForKey(key), k.MinVersion, k.MaxVersion, max(lo, r[0]), min(hi, r[1]))
				}
			}
		}
	})

	t.Run("too-new ApiVersions gets the v0 answer", func(t *testing.T) {
		conn := dialRaw(t, p.Addr)
		// A v9 ApiVersions request, newer than anything the proxy speaks: the header is the
		// v2 (flexible) header, the body empty tags. Encoded by hand: kmsg knows no v9.
		frame := []byte{0, 0, 0, 0, 0, 18, 0, 9, 0, 0, 0, 7, 0, 4, 't', 'e', 's', 't', 0, 0, 0, 0}
		binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
		if _, err := conn.nc.Write(frame); err != nil {
			t.Fatal(err)
		}
		corr, body, err := conn.read(false)
		if err != nil {
			t.Fatalf("the proxy closed the connection instead of answering: %v", err)
		}
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.Version = 0
		if err := resp.ReadFrom(body); err != nil || corr != 7 {
			t.Fatalf("v0 answer: corr %d, %v", corr, err)
		}
		if resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) == 0 {
			t.Fatalf("answer error %d with %d keys, want UNSUPPORTED_VERSION with the ranges", resp.ErrorCode, len(resp.ApiKeys))
		}
		// The same connection goes on with a version the proxy speaks.
		req := kmsg.NewPtrApiVersionsRequest()
		if r := conn.roundTrip(req, 8).(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 {
			t.Fatalf("ApiVersions v0 after the downgrade: error %d", r.ErrorCode)
		}
	})

	t.Run("pipelined mixed requests come back in order", func(t *testing.T) {
		conn := dialRaw(t, p.Addr)
		var reqs []kmsg.Request
		for i := 0; i < 10; i++ {
			meta := kmsg.NewPtrMetadataRequest()
			meta.Version = 9
			lo := kmsg.NewPtrListOffsetsRequest()
			lo.Version = 4
			lt := kmsg.NewListOffsetsRequestTopic()
			lt.Topic = "proto"
			for part := int32(0); part < 12; part++ {
				lp := kmsg.NewListOffsetsRequestTopicPartition()
				lp.Partition, lp.Timestamp = part, -1
				lt.Partitions = append(lt.Partitions, lp)
			}
			lo.Topics = append(lo.Topics, lt)
			fc := kmsg.NewPtrFindCoordinatorRequest()
			fc.Version = 3
			fc.CoordinatorKey = fmt.Sprintf("pipe-%d", i)
			prod := kmsg.NewPtrProduceRequest()
			prod.Version = 7
			prod.Acks, prod.TimeoutMillis = -1, 30000
			pt := kmsg.NewProduceRequestTopic()
			pt.Topic = "proto"
			for part := int32(0); part < 12; part++ {
				pp := kmsg.NewProduceRequestTopicPartition()
				pp.Partition, pp.Records = part, recordBatch(fmt.Sprintf("pipelined-%d-%d", i, part))
				pt.Partitions = append(pt.Partitions, pp)
			}
			prod.Topics = append(prod.Topics, pt)
			av := kmsg.NewPtrApiVersionsRequest()
			reqs = append(reqs, meta, lo, prod, fc, av)
		}
		for i, r := range reqs {
			conn.send(r, int32(1000+i))
		}
		for i, r := range reqs {
			corr, body, err := conn.read(r.IsFlexible() && r.Key() != 18)
			if err != nil {
				t.Fatalf("response %d: %v", i, err)
			}
			if corr != int32(1000+i) {
				t.Fatalf("response %d has correlation id %d, want %d: out of order", i, corr, 1000+i)
			}
			resp := r.ResponseKind()
			resp.SetVersion(r.GetVersion())
			if err := resp.ReadFrom(body); err != nil {
				t.Fatalf("response %d (%s) does not decode: %v", i, kmsg.NameForKey(r.Key()), err)
			}
			if pr, ok := resp.(*kmsg.ProduceResponse); ok {
				for _, tp := range pr.Topics {
					for _, pp := range tp.Partitions {
						if pp.ErrorCode != 0 {
							t.Fatalf("pipelined produce to partition %d: %v", pp.Partition, kerr.ErrorForCode(pp.ErrorCode))
						}
					}
				}
			}
		}
		// The ten produces of each partition were appended in the order sent.
		cl := newClient(t, p.Addr, kgo.ConsumeTopics("proto"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		perPart := map[int32][]string{}
		for n := 0; n < 120; {
			fs := cl.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatal(err)
			}
			fs.EachRecord(func(r *kgo.Record) { perPart[r.Partition] = append(perPart[r.Partition], string(r.Value)); n++ })
		}
		for part, vals := range perPart {
			for i, v := range vals {
				if want := fmt.Sprintf("pipelined-%d-%d", i, part); v != want {
					t.Fatalf("partition %d position %d holds %q, want %q", part, i, v, want)
				}
			}
		}
	})

	t.Run("groups on different coordinators", func(t *testing.T) {
		adm := kadm.NewClient(newClient(t, p.Addr))
		var groups []string
		coordinators := map[int32]bool{}
		for i := 0; len(coordinators) < 3 && i < 60; i++ {
			g := fmt.Sprintf("multi-%02d", i)
			groups = append(groups, g)
			// A commit creates the group on its coordinator.
			offs := kadm.Offsets{}
			offs.Add(kadm.Offset{Topic: "proto", Partition: int32(i % 12), At: int64(i % 3)})
			resp, err := adm.CommitOffsets(ctx, g, offs)
			if err != nil || resp.Error() != nil {
				t.Fatalf("commit for %s: %v %v", g, err, resp.Error())
			}
			// Which broker coordinates it, asked of a broker directly.
			fc := kmsg.NewPtrFindCoordinatorRequest()
			fc.Version = 3
			fc.CoordinatorKey = g
			coordinators[dialRaw(t, c.brokers[0].Addr).roundTrip(fc, 1).(*kmsg.FindCoordinatorResponse).NodeID] = true
		}
		if len(coordinators) < 2 {
			t.Fatalf("%d groups all on %v: the test needs several coordinators", len(groups), coordinators)
		}

		// ListGroups through the proxy is the union of every broker's answer.
		union := map[string]bool{}
		for _, b := range c.brokers {
			resp := dialRaw(t, b.Addr).roundTrip(kmsg.NewPtrListGroupsRequest(), 1).(*kmsg.ListGroupsResponse)
			for _, g := range resp.Groups {
				union[g.Group] = true
			}
		}
		lg := dialRaw(t, p.Addr).roundTrip(kmsg.NewPtrListGroupsRequest(), 1).(*kmsg.ListGroupsResponse)
		var got, want []string
		for _, g := range lg.Groups {
			got = append(got, g.Group)
		}
		for g := range union {
			want = append(want, g)
		}
		sort.Strings(got)
		sort.Strings(want)
		if lg.ErrorCode != 0 || fmt.Sprint(got) != fmt.Sprint(want) || len(got) < len(groups) {
			t.Fatalf("ListGroups through the proxy: error %d, %v; the brokers' union is %v", lg.ErrorCode, got, want)
		}

		// DescribeGroups and OffsetFetch v8 name every group at once; none is NOT_COORDINATOR.
		conn := dialRaw(t, p.Addr)
		dg := kmsg.NewPtrDescribeGroupsRequest()
		dg.Version = 5
		dg.Groups = groups
		dresp := conn.roundTrip(dg, 2).(*kmsg.DescribeGroupsResponse)
		if len(dresp.Groups) != len(groups) {
			t.Fatalf("DescribeGroups answered %d groups, want %d", len(dresp.Groups), len(groups))
		}
		for i, g := range dresp.Groups {
			if g.Group != groups[i] || g.ErrorCode != 0 {
				t.Fatalf("DescribeGroups group %d: %s error %v", i, g.Group, kerr.ErrorForCode(g.ErrorCode))
			}
		}
		of := kmsg.NewPtrOffsetFetchRequest()
		of.Version = 8
		for _, g := range groups {
			rg := kmsg.NewOffsetFetchRequestGroup()
			rg.Group = g
			of.Groups = append(of.Groups, rg)
		}
		oresp := conn.roundTrip(of, 3).(*kmsg.OffsetFetchResponse)
		if len(oresp.Groups) != len(groups) {
			t.Fatalf("OffsetFetch answered %d groups, want %d", len(oresp.Groups), len(groups))
		}
		for i, g := range oresp.Groups {
			if g.Group != groups[i] || g.ErrorCode != 0 {
				t.Fatalf("OffsetFetch group %s: %v", g.Group, kerr.ErrorForCode(g.ErrorCode))
			}
			found := false
			for _, tp := range g.Topics {
				for _, pp := range tp.Partitions {
					if pp.Partition == int32(i%12) && pp.Offset == int64(i%3) && pp.ErrorCode == 0 {
						found = true
					}
				}
			}
			if !found {
				t.Fatalf("OffsetFetch group %s lacks its committed offset %d on partition %d: %+v", g.Group, i%3, i%12, g.Topics)
			}
		}
	})

	t.Run("bad frames close only their connection", func(t *testing.T) {
		healthy := dialRaw(t, p.Addr)
		healthy.roundTrip(kmsg.NewPtrApiVersionsRequest(), 1)
		for name, frame := range map[string][]byte{
			"oversized": {0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 9},
			"too small": {0, 0, 0, 2, 0, 3},
			"malformed": append([]byte{0, 0, 0, 14, 0, 3, 0, 9, 0, 0, 0, 5, 0, 0}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
			"unknown":   {0, 0, 0, 10, 0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xff, 0xff},
		} {
			bad := dialRaw(t, p.Addr)
			if _, err := bad.nc.Write(frame); err != nil {
				t.Fatal(err)
			}
			if _, _, err := bad.read(false); err == nil {
				t.Fatalf("%s frame: the proxy answered instead of closing the connection", name)
			}
			// The other client's connection is untouched.
			meta := kmsg.NewPtrMetadataRequest()
			meta.Version = 9
			if r := healthy.roundTrip(meta, 2).(*kmsg.MetadataResponse); len(r.Brokers) != 3 {
				t.Fatalf("after a %s frame on another connection: %d brokers", name, len(r.Brokers))
			}
		}
		if n := metricValue(p.Metrics(), "kafscale_proxy_connections_rejected_total"); n < 4 {
			t.Fatalf("kafscale_proxy_connections_rejected_total is %v after four bad frames", n)
		}
	})
}

// recordBatch encodes a one-record RecordBatch v2 with a correct CRC-32C.
func recordBatch(value string) []byte {
	r := kmsg.NewRecord()
	r.Value = []byte(value)
	body := r.AppendTo(nil)
	r.Length = int32(len(body) - 1)
	b := kmsg.NewRecordBatch()
	b.Magic, b.PartitionLeaderEpoch, b.ProducerID, b.ProducerEpoch, b.FirstSequence = 2, -1, -1, -1, -1
	b.FirstTimestamp, b.MaxTimestamp = time.Now().UnixMilli(), time.Now().UnixMilli()
	b.NumRecords = 1
	b.Records = r.AppendTo(nil)
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}
