package main

import "testing"

func TestMemoryLimit(t *testing.T) {
	cases := []struct {
		cache      int64
		gomemlimit string
		want       int64
		ok         bool
	}{
		{256 << 20, "", 256<<20 + memoryHeadroom, true},
		{0, "", memoryHeadroom, true},
		{-1, "", memoryHeadroom, true},
		{256 << 20, "1GiB", 0, false},
	}
	for _, c := range cases {
		got, ok := memoryLimit(c.cache, c.gomemlimit)
		if got != c.want || ok != c.ok {
			t.Errorf("memoryLimit(%d, %q) = %d, %v; want %d, %v", c.cache, c.gomemlimit, got, ok, c.want, c.ok)
		}
	}
}
