package metadata

import (
	"errors"
	"math"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestCheckSequence(t *testing.T) {
	const pid = 7
	// The producer appended sequences 0-9, 10-19, 20-29 at epoch 2.
	known := func() map[int64]*ProducerState {
		prods := map[int64]*ProducerState{}
		for i := int32(0); i < 3; i++ {
			RecordProducerBatch(prods, pid, 2, ProducerBatch{FirstSeq: 10 * i, LastSeq: 10*i + 9, Base: 100 + int64(i)*10}, 1)
		}
		return prods
	}
	tests := []struct {
		name        string
		pid         int64
		epoch       int16
		first, last int32
		wantDupBase int64 // -1: not a duplicate
		wantErr     error
	}{
		{"next in sequence", pid, 2, 30, 34, -1, nil},
		{"duplicate of the newest", pid, 2, 20, 29, 120, nil},
		{"duplicate of an older one", pid, 2, 0, 9, 100, nil},
		{"gap", pid, 2, 31, 35, -1, kerr.OutOfOrderSequenceNumber},
		{"lower sequence, not a known batch", pid, 2, 5, 9, -1, kerr.OutOfOrderSequenceNumber},
		{"same first, other last", pid, 2, 20, 25, -1, kerr.OutOfOrderSequenceNumber},
		{"older epoch", pid, 1, 30, 34, -1, kerr.InvalidProducerEpoch},
		{"newer epoch at 0", pid, 3, 0, 4, -1, nil},
		{"newer epoch not at 0", pid, 3, 30, 34, -1, kerr.OutOfOrderSequenceNumber},
		{"unknown producer at 0", 8, 0, 0, 4, -1, nil},
		{"unknown producer mid-stream (KIP-360)", 8, 0, 500, 504, -1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dup, err := CheckSequence(known(), tt.pid, tt.epoch, tt.first, tt.last)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			switch {
			case tt.wantDupBase < 0 && dup != nil:
				t.Fatalf("taken for a duplicate of the batch at %d", dup.Base)
			case tt.wantDupBase >= 0 && (dup == nil || dup.Base != tt.wantDupBase):
				t.Fatalf("duplicate = %+v, want base %d", dup, tt.wantDupBase)
			}
		})
	}
}

func TestRecordBatchKeepsFiveAndResetsOnNewEpoch(t *testing.T) {
	prods := map[int64]*ProducerState{}
	for i := int32(0); i < 8; i++ {
		RecordProducerBatch(prods, 1, 0, ProducerBatch{FirstSeq: i, LastSeq: i, Base: int64(i)}, 1)
	}
	if n := len(prods[1].Batches); n != MaxProducerBatches {
		t.Fatalf("%d batches remembered, want %d", n, MaxProducerBatches)
	}
	if dup, _ := CheckSequence(prods, 1, 0, 3, 3); dup == nil || dup.Base != 3 {
		t.Fatalf("5th newest batch not detected as a duplicate: %+v", dup)
	}
	if _, err := CheckSequence(prods, 1, 0, 2, 2); !errors.Is(err, kerr.OutOfOrderSequenceNumber) {
		t.Fatalf("6th newest batch: err = %v, want OUT_OF_ORDER_SEQUENCE_NUMBER (forgotten)", err)
	}
	before := prods[1]
	snapshot := CloneProducers(prods)
	RecordProducerBatch(prods, 1, 1, ProducerBatch{FirstSeq: 0, LastSeq: 0, Base: 8}, 2)
	if st := prods[1]; st.Epoch != 1 || len(st.Batches) != 1 {
		t.Fatalf("after an epoch bump: %+v", st)
	}
	if snapshot[1] != before || len(before.Batches) != MaxProducerBatches {
		t.Fatal("RecordBatch mutated a stored entry; snapshots must stay unchanged")
	}
}

func TestSequenceWraps(t *testing.T) {
	if got := LastSequence(math.MaxInt32-1, 3); got != 1 {
		t.Fatalf("LastSequence wraps to %d, want 1", got)
	}
	prods := map[int64]*ProducerState{}
	RecordProducerBatch(prods, 1, 0, ProducerBatch{FirstSeq: math.MaxInt32 - 4, LastSeq: math.MaxInt32}, 1)
	if _, err := CheckSequence(prods, 1, 0, 0, 4); err != nil {
		t.Fatalf("sequence after MaxInt32: %v", err)
	}
}

func TestExpireProducers(t *testing.T) {
	prods := map[int64]*ProducerState{}
	RecordProducerBatch(prods, 1, 0, ProducerBatch{}, 1000)
	RecordProducerBatch(prods, 2, 0, ProducerBatch{}, 5000)
	if !ExpireProducers(prods, 2000) {
		t.Fatal("nothing expired")
	}
	if _, ok := prods[1]; ok {
		t.Fatal("producer idle since 1000 kept with cutoff 2000")
	}
	if _, ok := prods[2]; !ok {
		t.Fatal("producer active at 5000 expired with cutoff 2000")
	}
	// An expired producer is unknown again: accepted at any sequence (KIP-360).
	if dup, err := CheckSequence(prods, 1, 0, 42, 42); dup != nil || err != nil {
		t.Fatalf("expired producer: dup %v err %v", dup, err)
	}
}

func TestExpireProducersKeepsAtMostMaxProducers(t *testing.T) {
	prods := map[int64]*ProducerState{}
	for pid := int64(0); pid < MaxProducers+10; pid++ {
		RecordProducerBatch(prods, pid, 0, ProducerBatch{}, 1000+pid)
	}
	ExpireProducers(prods, 0)
	if len(prods) != MaxProducers {
		t.Fatalf("%d producers kept, want %d", len(prods), MaxProducers)
	}
	for pid := int64(0); pid < 10; pid++ {
		if _, ok := prods[pid]; ok {
			t.Fatalf("producer %d, one of the 10 longest idle, kept", pid)
		}
	}
}
