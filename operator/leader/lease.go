package leader

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Without etcd endpoints for the lock (the chart's default: every cluster gets a managed etcd,
// which the leader itself creates), replicas elect through a coordination.k8s.io Lease in
// their namespace instead, with controller-runtime's leader election. The Lease's name comes
// from the same leader key, so operators with distinct keys still coexist.

var notNameChars = regexp.MustCompile(`[^a-z0-9]+`)

// LeaseName derives the Lease's name from the leader key: its letters and digits, lower
// case, joined by '-' (at most 40 characters), then '-' and the first 8 hex digits of the
// key's SHA-256, so keys that read alike still get distinct Leases. The chart computes the
// same name for its Role (kafscale.operatorLeaseName); keep the two in step.
func LeaseName(key string) string {
	sum := sha256.Sum256([]byte(key))
	readable := strings.Trim(notNameChars.ReplaceAllString(strings.ToLower(key), "-"), "-")
	if len(readable) > 40 {
		readable = strings.TrimSuffix(readable[:40], "-")
	}
	if readable == "" {
		readable = "operator-leader"
	}
	return readable + "-" + hex.EncodeToString(sum[:])[:8]
}

// LeaseTimings are the Lease election's durations for a leader TTL
// (KAFSCALE_OPERATOR_LEADER_TTL_SEC): a dead leader is replaced within 3×TTL, a leader that
// cannot renew for 2×TTL steps down, candidates retry every 2/5 TTL. The default TTL of 5 s
// gives controller-runtime's defaults (15 s, 10 s, 2 s).
func LeaseTimings(ttl time.Duration) (lease, renew, retry time.Duration) {
	return 3 * ttl, 2 * ttl, max(ttl*2/5, 500*time.Millisecond)
}

// NewLeaseLock is the Lease lock of a replica, held under its pod name (plus a random
// suffix, unique per process), so `kubectl get lease` shows which pod leads.
func NewLeaseLock(cfg *rest.Config, namespace, key, podName string, renew time.Duration) (resourcelock.Interface, error) {
	c := rest.CopyConfig(cfg)
	// One hung request must not cost the leadership (client-go's own advice).
	c.Timeout = max(time.Second, renew/2)
	cs, err := kubernetes.NewForConfig(rest.AddUserAgent(c, "kafscale-operator-leader-election"))
	if err != nil {
		return nil, fmt.Errorf("kubernetes client for the leader Lease: %w", err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return resourcelock.New(resourcelock.LeasesResourceLock, namespace, LeaseName(key), nil, cs.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: podName + "_" + hex.EncodeToString(b[:])})
}

// SetLeading sets kafscale_operator_leader (the Lease election reports through it too).
func SetLeading(leading bool) {
	if leading {
		leaderGauge.Set(1)
	} else {
		leaderGauge.Set(0)
	}
}
