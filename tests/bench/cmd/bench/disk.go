package main

import (
	"context"
	"fmt"
	"syscall"
	"time"
)

// minFree is the free space below which the bench stops: the S3 server's and etcd's data live
// under the run's temporary directory, and a run that filled its disk stalled instead of
// failing (the broker answers KAFKA_STORAGE_ERROR while uploads fail, which franz-go's
// producers retry with no time limit by default).
const minFree = 1 << 30

// diskFree reports the bytes an unprivileged writer may still use on dir's file system.
func diskFree(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// lowDisk says why a run on dir with free bytes left cannot go on, or "" while it can.
func lowDisk(dir string, free uint64) string {
	if free >= minFree {
		return ""
	}
	return fmt.Sprintf("the disk under %s has %.2f GiB free, less than the %d GiB the bench keeps in reserve: "+
		"its S3 and etcd data (about 20 GiB in a default run) cannot fit; free space there, or set TMPDIR "+
		"to a directory on a larger disk", dir, float64(free)/(1<<30), minFree>>30)
}

// watchDisk cancels the run with the reason as cause once dir's disk runs low, checking
// every interval until ctx ends.
func watchDisk(ctx context.Context, dir string, interval time.Duration, free func(string) (uint64, error), cancel context.CancelCauseFunc) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := free(dir); err == nil {
			if why := lowDisk(dir, n); why != "" {
				cancel(fmt.Errorf("%s", why))
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
