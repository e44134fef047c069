package main

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestLowDiskStopsTheRunWithAReason(t *testing.T) {
	var left atomic.Uint64
	left.Store(5 << 30)
	free := func(string) (uint64, error) { return left.Load(), nil }
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan struct{})
	go func() { watchDisk(ctx, "/tmp/kafscale-bench-x", time.Millisecond, free, cancel); close(done) }()

	select {
	case <-ctx.Done():
		t.Fatalf("cancelled with 5 GiB free: %v", context.Cause(ctx))
	case <-time.After(20 * time.Millisecond):
	}
	left.Store(300 << 20)
	<-done
	why := context.Cause(ctx)
	if why == nil || !strings.Contains(why.Error(), "/tmp/kafscale-bench-x has 0.29 GiB free") || !strings.Contains(why.Error(), "TMPDIR") {
		t.Fatalf("cause = %v, want the directory, what is free and what to do", why)
	}
}

func TestLowDiskAllowsARunAboveTheReserve(t *testing.T) {
	if why := lowDisk("/x", minFree); why != "" {
		t.Fatalf("lowDisk at exactly the reserve: %q", why)
	}
	if why := lowDisk("/x", minFree-1); why == "" {
		t.Fatal("lowDisk below the reserve says nothing")
	}
}
