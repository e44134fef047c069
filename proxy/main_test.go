package main

import "testing"

func TestMemoryLimit(t *testing.T) {
	if got, ok := memoryLimit(256<<20, ""); !ok || got != 320<<20 {
		t.Fatalf("limit %d (%v), want 320 MiB", got, ok)
	}
	if _, ok := memoryLimit(256<<20, "1GiB"); ok {
		t.Fatal("GOMEMLIMIT must win")
	}
}
