package leader

import (
	"regexp"
	"testing"
	"time"
)

func TestLeaseName(t *testing.T) {
	dns1123 := regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	cases := []struct{ key, prefix string }{
		{"/kafscale/operator/leader", "kafscale-operator-leader-"},
		{"/kafscale/prod/operator-leader", "kafscale-prod-operator-leader-"},
		{"/Team_A//Leader/", "team-a-leader-"},
		{"/", "operator-leader-"},
		{"/a-very-long-leader-key/that/goes/on/and/on/and/on/for/ever", "a-very-long-leader-key-that-goes-on-and-"},
	}
	seen := map[string]string{}
	for _, tc := range cases {
		name := LeaseName(tc.key)
		if len(name) != len(tc.prefix)+8 || name[:len(tc.prefix)] != tc.prefix || !dns1123.MatchString(name) {
			t.Errorf("LeaseName(%q) = %q, want %s<8 hex>, a DNS-1123 label", tc.key, name, tc.prefix)
		}
		if other, ok := seen[name]; ok {
			t.Errorf("%q and %q share the Lease %s", tc.key, other, name)
		}
		seen[name] = tc.key
	}
	// Keys that read alike still get distinct Leases, and the name is stable.
	if a, b := LeaseName("/a/b"), LeaseName("/a-b"); a == b || a != LeaseName("/a/b") {
		t.Errorf("/a/b → %s, /a-b → %s", a, b)
	}
	// The chart's default key; its Role names this Lease (`printf %s <key> | sha256sum`).
	if got := LeaseName("/kafscale/operator/leader"); got != "kafscale-operator-leader-49f01aa5" {
		t.Errorf("LeaseName(/kafscale/operator/leader) = %s", got)
	}
}

func TestLeaseTimings(t *testing.T) {
	lease, renew, retry := LeaseTimings(5 * time.Second)
	if lease != 15*time.Second || renew != 10*time.Second || retry != 2*time.Second {
		t.Errorf("TTL 5s: %v %v %v", lease, renew, retry)
	}
	if _, _, retry := LeaseTimings(time.Second); retry != 500*time.Millisecond {
		t.Errorf("TTL 1s: retry %v", retry)
	}
}
