package records

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// fakeCluster points the viewer at kfake (franz-go's in-process Kafka) and gives the
// bounds the console would read from etcd.
type fakeCluster struct {
	seeds []string
	hwm   int64
}

func (f *fakeCluster) Seeds(context.Context) ([]string, error) { return f.seeds, nil }
func (f *fakeCluster) PartitionBounds(_ context.Context, topic string, p int32) (int64, int64, bool, error) {
	if topic != "t" || p != 0 {
		return 0, 0, false, nil
	}
	return 0, f.hwm, true, nil
}

func TestRead(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...), kgo.DefaultProduceTopic("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := time.UnixMilli(1795280000000)
	for i := range 10 {
		r := &kgo.Record{Value: []byte("v" + strconv.Itoa(i)), Timestamp: base.Add(time.Duration(i) * time.Second),
			Headers: []kgo.RecordHeader{{Key: "h", Value: []byte{byte(i)}}}}
		if i != 3 {
			r.Key = []byte("k" + strconv.Itoa(i))
		}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	v := New(&fakeCluster{seeds: kc.ListenAddrs(), hwm: 10}, 5, 10*time.Second)
	offsets := func(res *Result) []int64 {
		var out []int64
		for _, r := range res.Records {
			out = append(out, r.Offset)
		}
		return out
	}
	at := func(n int64) *int64 { return &n }
	for _, tc := range []struct {
		name string
		q    Query
		want []int64
	}{
		{"latest 3", Query{Topic: "t", Limit: 3}, []int64{7, 8, 9}},
		{"from offset 2", Query{Topic: "t", Limit: 2, Offset: at(2)}, []int64{2, 3}},
		{"from the last offset", Query{Topic: "t", Limit: 5, Offset: at(9)}, []int64{9}},
		{"from the high watermark", Query{Topic: "t", Limit: 5, Offset: at(10)}, nil},
		{"from a time", Query{Topic: "t", Limit: 2, Timestamp: at(base.Add(4500 * time.Millisecond).UnixMilli())}, []int64{5, 6}},
		{"from a time after every record", Query{Topic: "t", Limit: 2, Timestamp: at(base.Add(time.Hour).UnixMilli())}, nil},
	} {
		res, err := v.Read(ctx, tc.q)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := offsets(res); len(got) != len(tc.want) || len(got) > 0 && (got[0] != tc.want[0] || got[len(got)-1] != tc.want[len(tc.want)-1]) {
			t.Errorf("%s: offsets %v, want %v", tc.name, got, tc.want)
		}
	}
	res, err := v.Read(ctx, Query{Topic: "t", Limit: 1, Offset: at(3)})
	if err != nil {
		t.Fatal(err)
	}
	r := res.Records[0]
	if r.Key != nil || string(r.Value) != "v3" || len(r.Headers) != 1 || r.Headers[0].Key != "h" || r.Headers[0].Value[0] != 3 || !r.Timestamp.Equal(base.Add(3*time.Second)) {
		t.Errorf("record 3 %+v: want a null key, its value, header and timestamp", r)
	}
	if _, err := v.Read(ctx, Query{Topic: "t", Limit: 6}); err == nil {
		t.Error("a limit above the maximum was accepted")
	}
	if _, err := v.Read(ctx, Query{Topic: "nope", Limit: 1}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown topic: %v, want ErrNotFound", err)
	}
}
