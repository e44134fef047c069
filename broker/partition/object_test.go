package partition

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafscale/kafscale/broker/object"
	"github.com/kafscale/kafscale/internal/metadata"
)

// buildObject lays out every cut's bytes back to back, points each new chunk at them,
// archives index entries into the same object when a state outgrows MaxChunks, and ends
// with a footer describing every section.
func TestBuildObjectLayout(t *testing.T) {
	o := testOptions()
	o.NodeID = 7
	m := &Manager{opts: o}
	full := &metadata.PartitionState{HighWatermark: metadata.MaxChunks}
	for i := int64(0); i < metadata.MaxChunks; i++ {
		full.Chunks = append(full.Chunks, metadata.Chunk{Object: "old", Base: i, Last: i, MaxTimestamp: i})
	}
	cuts := []*cut{
		{p: newPartition(topicPartition{"a", 0}, [16]byte{1}, 3), data: []byte("AAAA"), base: 0, last: 1, maxTS: 10, prev: &metadata.PartitionState{}},
		{p: newPartition(topicPartition{"b", 5}, [16]byte{2}, 4), data: []byte("BBBBBB"), base: metadata.MaxChunks, last: metadata.MaxChunks + 2, maxTS: 20, prev: full},
	}
	parts, err := m.buildObject("obj", cuts)
	if err != nil {
		t.Fatal(err)
	}
	// The cuts' buffers go into the body as they are, followed by one tail.
	if len(parts) != 3 || &parts[0][0] != &cuts[0].data[0] || &parts[1][0] != &cuts[1].data[0] {
		t.Fatalf("body parts do not reuse the cuts' buffers: %d parts", len(parts))
	}
	body := bytes.Join(parts, nil)
	if !bytes.HasPrefix(body, []byte("AAAABBBBBB")) {
		t.Fatalf("layout %q", body)
	}
	footer, err := object.ReadFooter(body)
	if err != nil {
		t.Fatal(err)
	}
	if footer.Node != 7 || len(footer.Sections) != 3 {
		t.Fatalf("footer %+v", footer)
	}
	a, b := cuts[0].next, cuts[1].next
	if c := a.Chunks[0]; c != (metadata.Chunk{Object: "obj", Pos: 0, Len: 4, Base: 0, Last: 1, MaxTimestamp: 10}) || a.HighWatermark != 2 {
		t.Fatalf("a: %+v", a)
	}
	last := b.Chunks[len(b.Chunks)-1]
	if last != (metadata.Chunk{Object: "obj", Pos: 4, Len: 6, Base: metadata.MaxChunks, Last: metadata.MaxChunks + 2, MaxTimestamp: 20}) || b.HighWatermark != metadata.MaxChunks+3 {
		t.Fatalf("b's new chunk %+v", last)
	}
	if len(b.Chunks) > metadata.MaxChunks || len(b.Archives) != 1 {
		t.Fatalf("b: %d chunks, %d archives", len(b.Chunks), len(b.Archives))
	}
	ref := b.Archives[0]
	var sec metadata.IndexSection
	if err := json.Unmarshal(body[ref.Pos:ref.Pos+ref.Len], &sec); err != nil {
		t.Fatalf("archived section at %d+%d: %v", ref.Pos, ref.Len, err)
	}
	if ref.Object != "obj" || sec.Chunks[0].Base != 0 || sec.Chunks[len(sec.Chunks)-1].Last+1 != b.Chunks[0].Base {
		t.Fatalf("archive ref %+v does not join the remaining chunks", ref)
	}
	if footer.Sections[2].Kind != "index" || footer.Sections[2].Pos != ref.Pos {
		t.Fatalf("footer index section %+v", footer.Sections[2])
	}
	// The encoded next states are what the commit writes; they must not alias the prev state.
	if len(full.Chunks) != metadata.MaxChunks || cuts[1].value == "" {
		t.Fatal("buildObject modified the committed state")
	}
}

func TestResultWaitAndFinishOnce(t *testing.T) {
	r := newResult()
	r.finish(nil)
	r.finish(fmt.Errorf("late")) // ignored
	if err := r.wait(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// Appends wait while the buffers hold 4×SegmentBytes, until a flush takes them.
func TestWaitForRoomBackpressure(t *testing.T) {
	o := testOptions()
	o.SegmentBytes = 10
	m := &Manager{opts: o, cutDone: make(chan struct{}), kick: make(chan struct{}, 1)}
	if err := m.waitForRoom(t.Context()); err != nil {
		t.Fatalf("empty buffers: %v", err)
	}
	m.buffered.Store(40)
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	if err := m.waitForRoom(cancelled); !errors.Is(err, kerr.RequestTimedOut) {
		t.Fatalf("full buffers, request gone: %v", err)
	}
	done := make(chan error)
	go func() { done <- m.waitForRoom(t.Context()) }()
	<-m.kick // the waiting append asked for a flush
	m.mu.Lock()
	m.buffered.Store(0) // the flush took the buffers
	close(m.cutDone)
	m.cutDone = make(chan struct{})
	m.mu.Unlock()
	if err := <-done; err != nil {
		t.Fatalf("after the cut: %v", err)
	}
}

// testOptions are the broker's defaults (broker/config), which Manager tests start from.
func testOptions() Options {
	return Options{
		SegmentBytes: 4 << 20, FlushInterval: 500 * time.Millisecond, FlushParallelism: 4,
		CacheBytes: 256 << 20, ReadaheadSegments: 2, CommitTimeout: 5 * time.Second,
		S3RequestTimeout: 10 * time.Second, MaxTxnOps: 128, MaxTxnBytes: 1 << 20,
		RetentionCheckInterval: time.Minute, SweepGrace: 10 * time.Minute,
		ProducerIDExpiration: 24 * time.Hour, Logger: slog.Default(),
	}
}
