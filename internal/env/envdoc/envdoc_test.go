package envdoc

import (
	"regexp"
	"testing"
)

func TestVariables(t *testing.T) {
	doc := "## A\n| `KAFSCALE_X`, `KAFSCALE_Y` | 1 | `KAFSCALE_NOT_FIRST` |\n" +
		"## B\n| `KAFSCALE_Z` | 2 |\n| `KAFSCALE_X` | 3 |\ntext `KAFSCALE_TEXT` | x | y\n"
	got := Variables(doc, func(h string) bool { return h == "## A" }, regexp.MustCompile("`(KAFSCALE_[A-Z_]+)`"), "| `KAFSCALE_")
	want := map[string]bool{"KAFSCALE_X": true, "KAFSCALE_Y": true, "KAFSCALE_Z": false}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for n, in := range want {
		if v, ok := got[n]; !ok || v != in {
			t.Errorf("%s: got %v (present %v), want %v", n, v, ok, in)
		}
	}
	if in := In(got); len(in) != 2 || !in["KAFSCALE_X"] || !in["KAFSCALE_Y"] {
		t.Errorf("In = %v", in)
	}
}
