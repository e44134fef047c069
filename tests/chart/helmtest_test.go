package chart

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	corev1 "k8s.io/api/core/v1"
)

// The `helm test` pods, run as rendered: the kafscale-check binary (built from ./check, as
// `make images` builds it into the pods' image) with the pods' arguments, against kfake,
// franz-go's in-process Kafka, standing in for the proxy: one endpoint that answers
// Metadata with itself. Only the bootstrap address (the proxy Service's cluster DNS name)
// is replaced by kfake's.
func TestHelmTestPodsAgainstKafka(t *testing.T) {
	const topic = "kafscale-helm-test"
	bin := filepath.Join(t.TempDir(), "kafscale-check")
	build := exec.Command("go", "build", "-o", bin, "../../check")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./check: %v\n%s", err, out)
	}

	// start returns the first listener of a fresh kfake cluster holding the test topic.
	start := func(t *testing.T, brokers int) string {
		t.Helper()
		cluster, err := kfake.NewCluster(kfake.NumBrokers(brokers), kfake.SeedTopics(1, topic))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cluster.Close)
		addrs := cluster.ListenAddrs()
		sort.Strings(addrs)
		return addrs[0]
	}
	// step runs one test pod's container, rendered for a proxy advertising addr.
	step := func(t *testing.T, addr, which string) error {
		t.Helper()
		host, port, _ := net.SplitHostPort(addr)
		m := render(t, values{set: map[string]string{
			"proxy.advertisedHost": host, "proxy.advertisedPort": port, "tests.timeoutSeconds": "10", "tests.topic": topic,
			// The main listener's endpoint is what kfake stands in for here; with the
			// internal listener on, the pods would check that one instead.
			"proxy.internalListener.enabled": "false",
		}})
		args := append([]string(nil), get[corev1.Pod](t, m, "Pod", name("test-"+which)).Spec.Containers[0].Args...)
		replaced := false
		for i := range args {
			if i > 0 && args[i-1] == "-bootstrap" && args[i] == name("proxy")+":9092" {
				args[i], replaced = addr, true
			}
		}
		if !replaced {
			t.Fatalf("%s: no -bootstrap %s:9092 in %q", which, name("proxy"), args)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		t.Logf("%s (err %v):\n%s", which, err, out)
		return err
	}

	t.Run("metadata, produce, consume through one advertised endpoint", func(t *testing.T) {
		addr := start(t, 1)
		for _, which := range []string{"metadata", "produce", "consume"} {
			if err := step(t, addr, which); err != nil {
				t.Fatalf("%s failed: %v", which, err)
			}
		}
	})
	t.Run("metadata fails when brokers other than the advertised endpoint are listed", func(t *testing.T) {
		if step(t, start(t, 3), "metadata") == nil {
			t.Error("the metadata check passed with three brokers listed")
		}
	})
	t.Run("consume fails when the record was not produced", func(t *testing.T) {
		if step(t, start(t, 1), "consume") == nil {
			t.Error("consume found a record nobody produced")
		}
	})
}
