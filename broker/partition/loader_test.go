package partition

import (
	"testing"

	"github.com/kafscale/kafscale/internal/metadata"
)

// coalesce groups the chunks of one object that lie close together into one GET each,
// whatever order they were asked in.
func TestCoalesce(t *testing.T) {
	chunk := func(pos, n int64) *load { return &load{chunk: metadata.Chunk{Object: "o", Pos: pos, Len: n}} }
	cases := []struct {
		name  string
		loads []*load
		want  [][]int64 // positions per run
	}{
		{"one", []*load{chunk(10, 5)}, [][]int64{{10}}},
		{"adjacent, asked out of order", []*load{chunk(200, 100), chunk(0, 100), chunk(100, 100)}, [][]int64{{0, 100, 200}}},
		{"a gap up to maxGap is read through", []*load{chunk(0, 100), chunk(100+maxGap, 10)}, [][]int64{{0, 100 + maxGap}}},
		{"a larger gap splits", []*load{chunk(0, 100), chunk(101+maxGap, 10)}, [][]int64{{0}, {101 + maxGap}}},
		{"a run stops at maxRun", []*load{chunk(0, maxRun/2), chunk(maxRun/2, maxRun/2), chunk(maxRun, 1)}, [][]int64{{0, maxRun / 2}, {maxRun}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			runs := coalesce(c.loads)
			var got [][]int64
			for _, r := range runs {
				var pos []int64
				for _, l := range r {
					pos = append(pos, l.chunk.Pos)
				}
				got = append(got, pos)
			}
			if len(got) != len(c.want) {
				t.Fatalf("runs %v, want %v", got, c.want)
			}
			for i := range got {
				if len(got[i]) != len(c.want[i]) {
					t.Fatalf("runs %v, want %v", got, c.want)
				}
				for j := range got[i] {
					if got[i][j] != c.want[i][j] {
						t.Fatalf("runs %v, want %v", got, c.want)
					}
				}
			}
		})
	}
}

// join hands back a lone span as it is (no copy) and copies several into one slice.
func TestJoin(t *testing.T) {
	a := []byte("abc")
	if got := join([][]byte{a}, 3); &got[0] != &a[0] {
		t.Fatal("a single span must be returned without a copy")
	}
	got := join([][]byte{a, []byte("de")}, 5)
	if string(got) != "abcde" || cap(got) != 5 {
		t.Fatalf("joined %q (cap %d)", got, cap(got))
	}
	if join(nil, 0) != nil {
		t.Fatal("no spans: nil")
	}
}
