package metadata

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func chunkAt(base, last int64) Chunk {
	return Chunk{Object: "o", Base: base, Last: last, MaxTimestamp: last * 10}
}

func TestFindChunk(t *testing.T) {
	s := &PartitionState{Chunks: []Chunk{chunkAt(0, 9), chunkAt(10, 10), chunkAt(11, 40)}}
	cases := []struct {
		offset int64
		want   int
	}{{-1, -1}, {0, 0}, {9, 0}, {10, 1}, {11, 2}, {40, 2}, {41, -1}}
	for _, c := range cases {
		if got := s.FindChunk(c.offset); got != c.want {
			t.Errorf("FindChunk(%d) = %d, want %d", c.offset, got, c.want)
		}
	}
	refs := []IndexRef{{Base: 0, Last: 99}, {Base: 100, Last: 199}}
	for offset, want := range map[int64]int{0: 0, 99: 0, 100: 1, 199: 1, 200: -1, -5: -1} {
		if got := FindRef(refs, offset); got != want {
			t.Errorf("FindRef(%d) = %d, want %d", offset, got, want)
		}
	}
}

// Appending chunk after chunk keeps the etcd document bounded, and every offset stays
// findable through the chunks, the archive references and the sections they point at.
func TestArchiveKeepsStateBoundedAndFindable(t *testing.T) {
	s := &PartitionState{}
	sections := map[string]IndexSection{} // "object" name -> section
	const total = 5000
	for i := int64(0); i < total; i++ {
		s.Chunks = append(s.Chunks, chunkAt(i*3, i*3+2))
		if sec, ref, ok := s.ArchiveChunks(); ok {
			ref.Object = "sec-" + itoa(len(sections))
			sections[ref.Object] = sec
			s.AddArchive(ref)
		}
		if sec, ref, ok := s.FoldArchives(); ok {
			ref.Object = "sec-" + itoa(len(sections))
			sections[ref.Object] = sec
			s.PrependArchive(ref)
		}
		if len(s.Chunks) > MaxChunks || len(s.Archives) > MaxArchives {
			t.Fatalf("after %d chunks: %d chunks, %d archives", i+1, len(s.Chunks), len(s.Archives))
		}
	}
	var find func(refs []IndexRef, offset int64) (Chunk, bool)
	find = func(refs []IndexRef, offset int64) (Chunk, bool) {
		i := FindRef(refs, offset)
		if i < 0 {
			return Chunk{}, false
		}
		sec := sections[refs[i].Object]
		if len(sec.Refs) > 0 {
			return find(sec.Refs, offset)
		}
		j := sec.FindChunk(offset)
		if j < 0 {
			return Chunk{}, false
		}
		return sec.Chunks[j], true
	}
	for offset := int64(0); offset < total*3; offset += 7 {
		var c Chunk
		if i := s.FindChunk(offset); i >= 0 {
			c = s.Chunks[i]
		} else {
			var ok bool
			if c, ok = find(s.Archives, offset); !ok {
				t.Fatalf("offset %d not found", offset)
			}
		}
		if c.Base > offset || c.Last < offset {
			t.Fatalf("offset %d found in chunk %d..%d", offset, c.Base, c.Last)
		}
	}
	// Archives are contiguous and end where chunks begin.
	for i := 1; i < len(s.Archives); i++ {
		if s.Archives[i].Base != s.Archives[i-1].Last+1 {
			t.Fatalf("archives not contiguous at %d: %+v %+v", i, s.Archives[i-1], s.Archives[i])
		}
	}
	if s.Archives[len(s.Archives)-1].Last+1 != s.Chunks[0].Base {
		t.Fatal("archives do not end where chunks begin")
	}
}

func itoa(i int) string {
	return string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676%26))
}

func TestEndOffsetForEpoch(t *testing.T) {
	s := &PartitionState{HighWatermark: 50}
	s.AddEpoch(2, 0)
	s.AddEpoch(3, 10)
	s.AddEpoch(3, 12) // not newer: ignored
	s.AddEpoch(5, 10) // epoch 3 wrote nothing after 10... still answerable
	s.AddEpoch(7, 30)
	cases := []struct {
		epoch     int32
		end       int64
		leaderEpo int32
	}{{1, -1, -1}, {2, 10, 2}, {3, 10, 3}, {4, 10, 3}, {5, 30, 5}, {6, 30, 5}, {7, 50, 7}, {9, 50, 7}}
	for _, c := range cases {
		end, ep := s.EndOffsetForEpoch(c.epoch)
		if end != c.end || ep != c.leaderEpo {
			t.Errorf("EndOffsetForEpoch(%d) = %d, %d; want %d, %d", c.epoch, end, ep, c.end, c.leaderEpo)
		}
	}
	for i := int32(10); i < 10+2*MaxEpochs; i++ {
		s.AddEpoch(i, int64(i))
	}
	if len(s.Epochs) != MaxEpochs {
		t.Fatalf("%d epochs kept", len(s.Epochs))
	}
}

func TestAssign(t *testing.T) {
	snap := &Snapshot{ControllerID: -1, Topics: []Topic{{Name: "a", Partitions: []Partition{
		{ID: 0, Leader: 1, LeaderEpoch: 3}, {ID: 1, Leader: 2, LeaderEpoch: 0}, {ID: 2, Leader: 2, LeaderEpoch: 1}, {ID: 3, Leader: -1},
	}}}}
	live := []Broker{{NodeID: 1, Host: "h1", Port: 1}, {NodeID: 3, Host: "h3", Port: 3}}
	if !Assign(snap, live, 3) {
		t.Fatal("no change reported")
	}
	p := snap.Topics[0].Partitions
	if p[0].Leader != 1 || p[0].LeaderEpoch != 3 {
		t.Fatalf("a live leader moved: %+v", p[0])
	}
	for _, i := range []int{1, 2, 3} {
		if p[i].Leader != 1 && p[i].Leader != 3 {
			t.Fatalf("partition %d led by dead broker: %+v", i, p[i])
		}
	}
	if p[1].LeaderEpoch != 1 || p[2].LeaderEpoch != 2 || p[3].LeaderEpoch != 1 {
		t.Fatalf("epochs not bumped: %+v", p)
	}
	if snap.ControllerID != 3 || len(snap.Brokers) != 2 || snap.ClusterID == "" {
		t.Fatalf("snapshot %+v", snap)
	}
	if Assign(snap, live, 3) {
		t.Fatal("second Assign reported a change")
	}
	// Nobody live: leaders become -1 with a bumped epoch, once.
	if !Assign(snap, nil, 3) || snap.Topics[0].Partitions[0].Leader != -1 || snap.Topics[0].Partitions[0].LeaderEpoch != 4 {
		t.Fatalf("no live brokers: %+v", snap.Topics[0].Partitions)
	}
	if Assign(snap, nil, 3) {
		t.Fatal("repeated Assign without brokers reported a change")
	}
}

func TestValidateTopic(t *testing.T) {
	for name, ok := range map[string]bool{"orders": true, "a.b_c-D9": true, "": false, ".": false, "..": false, "a/b": false, "ü": false, string(make([]byte, 250)): false} {
		err := ValidateTopicName(name)
		if ok != (err == nil) || (!ok && !errors.Is(err, kerr.InvalidTopicException)) {
			t.Errorf("ValidateTopicName(%q) = %v", name, err)
		}
	}
	for kv, ok := range map[[2]string]bool{
		{"retention.ms", "-1"}: true, {"retention.ms", "x"}: false, {"cleanup.policy", "compact"}: false,
		{"cleanup.policy", "delete"}: true, {"no.such", "1"}: false, {"segment.bytes", "0"}: false,
	} {
		err := ValidateTopicConfig(kv[0], kv[1])
		if ok != (err == nil) || (!ok && !errors.Is(err, kerr.InvalidConfig)) {
			t.Errorf("ValidateTopicConfig(%s=%s) = %v", kv[0], kv[1], err)
		}
	}
}

func TestApplyRetention(t *testing.T) {
	// Two archived refs (100 bytes each) and three chunks (10 bytes each); timestamps grow.
	s := &PartitionState{
		LogStartOffset: 0, HighWatermark: 50,
		Archives: []IndexRef{{Base: 0, Last: 19, MaxTimestamp: 100, Size: 100}, {Base: 20, Last: 39, MaxTimestamp: 200, Size: 100}},
		Chunks: []Chunk{
			{Base: 40, Last: 44, MaxTimestamp: 300, Len: 10}, {Base: 45, Last: 48, MaxTimestamp: 400, Len: 10},
			{Base: 49, Last: 49, MaxTimestamp: 500, Len: 10},
		},
	}
	cases := []struct {
		name             string
		now, ms, bytes   int64
		ok               bool
		logStart         int64
		archives, chunks int
	}{
		{"unlimited", 10000, -1, -1, false, 0, 2, 3},
		{"nothing expired", 500, 1000, -1, false, 0, 2, 3},
		{"first ref expired", 250, 100, -1, true, 20, 1, 3},
		{"refs and a chunk expired", 450, 100, -1, true, 45, 0, 2},
		{"all expired keeps the tail", 100000, 1, -1, true, 49, 0, 1},
		{"bytes keep at least the limit", 0, -1, 25, true, 40, 0, 3},
		{"bytes exactly", 0, -1, 120, true, 20, 1, 3},
		{"bytes zero keeps the tail", 0, -1, 0, true, 49, 0, 1},
		{"bytes large", 0, -1, 1000, false, 0, 2, 3},
	}
	for _, c := range cases {
		next, ok := s.ApplyRetention(c.now, c.ms, c.bytes)
		if ok != c.ok {
			t.Errorf("%s: ok = %v, want %v", c.name, ok, c.ok)
			continue
		}
		if !ok {
			continue
		}
		if next.LogStartOffset != c.logStart || len(next.Archives) != c.archives || len(next.Chunks) != c.chunks || next.HighWatermark != 50 {
			t.Errorf("%s: logStart %d, %d archives, %d chunks, hwm %d; want %d, %d, %d, 50", c.name,
				next.LogStartOffset, len(next.Archives), len(next.Chunks), next.HighWatermark, c.logStart, c.archives, c.chunks)
		}
	}
	if len(s.Archives) != 2 || len(s.Chunks) != 3 || s.LogStartOffset != 0 {
		t.Fatal("ApplyRetention changed its receiver")
	}
	// A chunk without a timestamp never expires by time.
	u := &PartitionState{Chunks: []Chunk{{Base: 0, Last: 0, MaxTimestamp: -1, Len: 1}, {Base: 1, Last: 1, MaxTimestamp: 5, Len: 1}}}
	if _, ok := u.ApplyRetention(1000, 1, -1); ok {
		t.Error("a chunk with no timestamp expired by time")
	}
}

// BenchmarkEncodePartitionState: what one flush writes to etcd per partition, for the
// previous bound (64 chunks, producers inline) and the current one (MaxChunks, producers
// beyond MaxInlineProducers in a section). B/state is the etcd write volume.
func BenchmarkEncodePartitionState(b *testing.B) {
	state := func(chunks, inlineProducers int, ref bool) *PartitionState {
		st := &PartitionState{Leader: 3, LeaderEpoch: 7, HighWatermark: 1 << 40, Epochs: []EpochStart{{Epoch: 7, StartOffset: 12345678}}}
		for i := 0; i < chunks; i++ {
			st.Chunks = append(st.Chunks, Chunk{
				Object: fmt.Sprintf("segments/20261121/%013d-3-%012x.kso", 1795290000000+int64(i)*500, i),
				Pos:    int64(i) * 65536, Len: 65536, Base: int64(i) * 4096, Last: int64(i)*4096 + 4095, MaxTimestamp: 1795290000000 + int64(i)*500,
			})
		}
		st.Archives = []IndexRef{{Object: "segments/20261121/1795290000000-3-000000000000.kso", Pos: 4 << 20, Len: 900, Base: 0, Last: 4095, MaxTimestamp: 1795290000000, Level: 2, Size: 64 << 20}}
		st.Producers = map[int64]*ProducerState{}
		for i := 0; i < inlineProducers; i++ {
			ps := &ProducerState{Epoch: 0, LastMs: 1795290000000}
			for k := 0; k < MaxProducerBatches; k++ {
				ps.Batches = append(ps.Batches, ProducerBatch{FirstSeq: int32(100 * k), LastSeq: int32(100*k + 99), Base: int64(1000000 + 100*k)})
			}
			st.Producers[int64(1000+i)] = ps
		}
		if ref {
			st.ProducersRef = &SectionRef{Object: "segments/20261121/1795290000000-3-000000000000.kso", Pos: 5 << 20, Len: 90000}
		}
		return st
	}
	for _, tc := range []struct {
		name string
		st   *PartitionState
	}{
		{"previous/64chunks", state(64, 0, false)},
		{"previous/64chunks+500producers", state(64, 500, false)},
		{"now/16chunks", state(MaxChunks, 0, false)},
		{"now/16chunks+producersRef+16changed", state(MaxChunks, MaxInlineProducers, true)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var n int
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				data, err := json.Marshal(tc.st)
				if err != nil {
					b.Fatal(err)
				}
				n = len(data)
			}
			b.ReportMetric(float64(n), "B/state")
		})
	}
}

// SetProducers keeps producers inline while there are few, then moves them into a section
// and keeps inline only those changed since; too many changed or forgotten ones ask for a
// new section. AllProducers merges the section and the inline overrides.
func TestSetProducersInlineAndSection(t *testing.T) {
	view := func(n int) map[int64]*ProducerState {
		m := map[int64]*ProducerState{}
		for i := 0; i < n; i++ {
			m[int64(i)] = &ProducerState{LastMs: int64(i)}
		}
		return m
	}
	st := &PartitionState{}
	if st.SetProducers(view(MaxInlineProducers)) || len(st.Producers) != MaxInlineProducers {
		t.Fatalf("%d producers should stay inline", MaxInlineProducers)
	}
	all := view(100)
	if !st.SetProducers(all) {
		t.Fatal("100 producers should ask for a section")
	}
	st.SetProducerSection(all, SectionRef{Object: "o", Pos: 1, Len: 2})
	if st.Producers != nil || len(st.AllProducers()) != 100 {
		t.Fatalf("after the section: %d inline, %d in all", len(st.Producers), len(st.AllProducers()))
	}
	// Three producers append: only they are written inline.
	next := CloneProducers(all)
	for _, pid := range []int64{3, 50, 200} {
		next[pid] = &ProducerState{LastMs: 1000}
	}
	if st.SetProducers(next) || len(st.Producers) != 3 {
		t.Fatalf("3 changed producers: section asked or %d inline", len(st.Producers))
	}
	if got := st.AllProducers(); len(got) != 101 || got[50].LastMs != 1000 || got[7] != all[7] {
		t.Fatalf("merged view wrong: %d producers", len(got))
	}
	// Many changed: a new section.
	for pid := int64(0); pid <= MaxInlineProducers; pid++ {
		next[pid] = &ProducerState{LastMs: 2000}
	}
	if !st.SetProducers(next) {
		t.Fatal("more than MaxInlineProducers changed: want a new section")
	}
	// Many forgotten: a new section.
	fewer := CloneProducers(all)
	for pid := int64(0); pid <= MaxInlineProducers; pid++ {
		delete(fewer, pid)
	}
	if !st.SetProducers(fewer) {
		t.Fatal("more than MaxInlineProducers forgotten: want a new section")
	}
	// The section's object is referenced (the sweeper keeps it).
	seen := map[string]bool{}
	st.Referenced(func(o string) { seen[o] = true })
	if !seen["o"] {
		t.Fatal("the producer section's object is not referenced")
	}
}
