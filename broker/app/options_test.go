package app

import (
	"testing"
	"time"

	"github.com/kafscale/kafscale/broker/config"
)

func parse(t *testing.T, env map[string]string) *config.Broker {
	t.Helper()
	env["KAFSCALE_S3_BUCKET"] = "b"
	cfg, err := config.Parse(func(name string) (string, bool) { v, ok := env[name]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The defaults of broker/config are complete: every package accepts the options mapped from
// them, with nothing left for the package to fill in.
func TestDefaultsAreValidOptions(t *testing.T) {
	cfg := parse(t, map[string]string{})
	if err := PartitionOptions(cfg).Validate(); err != nil {
		t.Errorf("partition: %v", err)
	}
	if err := StorageOptions(cfg).Validate(); err != nil {
		t.Errorf("storage: %v", err)
	}
	if err := GroupOptions(cfg).Validate(); err != nil {
		t.Errorf("groups: %v", err)
	}
	if err := ServerConfig(cfg).Validate(); err != nil {
		t.Errorf("server: %v", err)
	}
	if err := PartitionOptions(config.Defaults()).Validate(); err != nil {
		t.Errorf("partition from config.Defaults: %v", err)
	}
}

// KAFSCALE_CACHE_BYTES=0 reaches the data path as 0 (cache disabled), and the data path's S3
// requests are bounded by KAFSCALE_S3_REQUEST_TIMEOUT_MS.
func TestSettingsReachTheDataPath(t *testing.T) {
	o := PartitionOptions(parse(t, map[string]string{"KAFSCALE_CACHE_BYTES": "0", "KAFSCALE_S3_REQUEST_TIMEOUT_MS": "2500"}))
	if o.CacheBytes != 0 {
		t.Errorf("CacheBytes = %d, want 0 (disabled)", o.CacheBytes)
	}
	if o.S3RequestTimeout != 2500*time.Millisecond {
		t.Errorf("S3RequestTimeout = %s, want 2.5s", o.S3RequestTimeout)
	}
	if err := o.Validate(); err != nil {
		t.Errorf("a disabled cache was refused: %v", err)
	}
	if g := GroupOptions(parse(t, map[string]string{"KAFSCALE_GROUP_INITIAL_REBALANCE_DELAY_MS": "0"})); g.InitialRebalanceDelay != 0 || g.Validate() != nil {
		t.Errorf("an initial rebalance delay of 0 (none) became %s", g.InitialRebalanceDelay)
	}
}
