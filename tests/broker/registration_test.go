package broker

import (
	"net/http"
	"testing"
	"time"

	meta "github.com/kafscale/kafscale/internal/metadata"
)

// TestRegistrationPublishesMetricsAddr: a broker's etcd registration names its metrics
// listener and its version, and /metrics answers at that address: the console finds every
// broker's metrics from etcd alone.
func TestRegistrationPublishesMetricsAddr(t *testing.T) {
	be := startBackend(t)
	b := be.startBroker(t, 4)
	ctx := testContext(t, time.Minute)
	store, err := meta.NewStore(ctx, be.etcd.Client(), defaultKeys, meta.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	members, err := store.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 1 || members[0].NodeID != 4 {
		t.Fatalf("registrations %+v, want broker 4 alone", members)
	}
	m := members[0]
	if m.MetricsAddr != b.MetricsAddr {
		t.Errorf("registered metrics address %q, want the broker's %q", m.MetricsAddr, b.MetricsAddr)
	}
	if m.Version == "" {
		t.Error("registration carries no version")
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.MetricsAddr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET the registered metrics address: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET http://%s/metrics = %d", m.MetricsAddr, resp.StatusCode)
	}
}
