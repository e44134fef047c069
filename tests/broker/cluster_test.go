package broker

import (
	"context"
	"testing"
	"time"

	"github.com/kafscale/kafscale/tests/brokertest"
	"github.com/kafscale/kafscale/tests/testenv"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestThreeBrokers: partitions spread over three brokers, clients follow the leaders; one
// broker drains on SIGTERM, its partitions move to the others, producing goes on, and every
// record is read back with dense offsets.
func TestThreeBrokers(t *testing.T) {
	be := startBackend(t)
	brokers := []*brokertest.Broker{be.startBroker(t, 0), be.startBroker(t, 1), be.startBroker(t, 2)}
	ctx := testContext(t, 4*time.Minute)
	seed := brokers[0].Addr

	testenv.WaitFor(t, ctx, "three brokers in the metadata", func() bool {
		m := metadata(t, ctx, seed, "")
		return len(m.Brokers) == 3
	})
	createTopic(t, seed, "spread", 6)
	leaders := map[int32]bool{}
	for _, p := range metadata(t, ctx, seed, "spread").Topics[0].Partitions {
		leaders[p.Leader] = true
	}
	if len(leaders) != 3 {
		t.Fatalf("6 partitions are led by %d brokers, want 3", len(leaders))
	}

	first := makeRecords("spread", 3000)
	produceFranz(t, ctx, seed, "spread", first)
	checkReadBack(t, first, consumeFranz(t, ctx, seed, "spread", len(first)))

	brokers[1].Stop()
	testenv.WaitFor(t, ctx, "no partition led by the stopped broker", func() bool {
		for _, p := range metadata(t, ctx, seed, "spread").Topics[0].Partitions {
			if p.Leader == 1 || p.Leader < 0 {
				return false
			}
		}
		return true
	})
	second := makeRecords("after-drain", 1000)
	produceFranz(t, ctx, seed, "spread", second)
	checkReadBack(t, append(first, second...), consumeFranz(t, ctx, seed, "spread", len(first)+len(second)))
}

func metadata(t *testing.T, ctx context.Context, addr, topic string) *kmsg.MetadataResponse {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	if topic != "" {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	return resp
}
