package optcheck

import (
	"strings"
	"testing"
	"time"
)

func TestEveryProblemIsNamed(t *testing.T) {
	p := New("pkg")
	Positive(p, "Size", 0)
	Positive(p, "Interval", -time.Second)
	Positive(p, "Rate", 0.5)
	NotNegative(p, "Cache", int64(-1), "0 disables it")
	NotNegative(p, "Readahead", 0, "0 disables it")
	err := p.Err()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"pkg: Size must be positive, not 0", "pkg: Interval must be positive, not -1s", "pkg: Cache -1 is negative (0 disables it)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "Rate") || strings.Contains(err.Error(), "Readahead") {
		t.Errorf("a valid value was refused:\n%v", err)
	}
	if New("pkg").Err() != nil {
		t.Error("no problems, yet an error")
	}
}
