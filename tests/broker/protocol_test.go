package broker

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Behaviours third-party clients depend on, each with raw requests and a client library's
// own API: sessionless fetches, transactional lookups and manual replica assignments.
func TestProtocolGaps(t *testing.T) {
	be := startBackend(t)
	b0 := be.startBroker(t, 0)
	b1 := be.startBroker(t, 1)
	createTopic(t, b0.Addr, "gaps", 2)

	produced := kgoClient(t, b0.Addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := range 20 {
		r := &kgo.Record{Topic: "gaps", Partition: int32(i % 2), Value: []byte{byte('a' + i)}}
		if err := produced.ProduceSync(testContext(t, time.Minute), r).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}

	t.Run("sessionless fetch", func(t *testing.T) {
		// A FINAL epoch with any session id is a full fetch (KIP-227).
		for _, id := range []int32{-1, 0, 12345} {
			req := kmsg.NewPtrFetchRequest()
			req.Version, req.MaxWaitMillis, req.MaxBytes = 12, 0, 1<<20
			req.SessionID, req.SessionEpoch = id, -1
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = "gaps"
			for p := range int32(2) {
				rp := kmsg.NewFetchRequestTopicPartition()
				rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = p, 0, 1<<20, -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
			// Every partition of "gaps" is asked of the broker that leads it.
			resp, err := req.RequestWith(testContext(t, time.Minute), produced)
			if err != nil {
				t.Fatalf("session %d: %v", id, err)
			}
			if resp.ErrorCode != 0 || resp.SessionID != 0 || len(resp.Topics) != 1 {
				t.Fatalf("session %d: error %v, session %d, %d topics; want a full sessionless answer", id, kerr.ErrorForCode(resp.ErrorCode), resp.SessionID, len(resp.Topics))
			}
			hw := int64(0)
			for _, p := range resp.Topics[0].Partitions {
				if p.ErrorCode != 0 && p.ErrorCode != kerr.NotLeaderForPartition.Code {
					t.Fatalf("session %d partition %d: %v", id, p.Partition, kerr.ErrorForCode(p.ErrorCode))
				}
				hw += max(p.HighWatermark, 0)
			}
			if hw == 0 {
				t.Fatalf("session %d: no high watermark in %+v", id, resp.Topics[0].Partitions)
			}
		}
		// franz-go's consumer without fetch sessions reads everything.
		consumer := kgoClient(t, b1.Addr, kgo.DisableFetchSessions(), kgo.ConsumeTopics("gaps"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		got := 0
		ctx := testContext(t, time.Minute)
		for got < 20 {
			fs := consumer.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatalf("consume without sessions after %d records: %v", got, err)
			}
			got += fs.NumRecords()
		}
	})

	t.Run("transactions refused at once", func(t *testing.T) {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorType, req.CoordinatorKeys = 1, []string{"txn-1"}
		resp, err := req.RequestWith(testContext(t, time.Minute), produced)
		if err != nil {
			t.Fatal(err)
		}
		c := resp.Coordinators[0]
		if c.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code || c.ErrorMessage == nil ||
			!strings.Contains(*c.ErrorMessage, "transactions are not supported") {
			t.Fatalf("FindCoordinator(transaction): %v %v; want TRANSACTIONAL_ID_AUTHORIZATION_FAILED saying transactions are not supported", kerr.ErrorForCode(c.ErrorCode), c.ErrorMessage)
		}
		// A transactional franz-go producer gets the fatal error, not its deadline: the
		// context allows ten minutes, far beyond its retries of a retriable error.
		txn := kgoClient(t, b0.Addr, kgo.TransactionalID("txn-1"), kgo.TransactionTimeout(10*time.Second))
		ctx := testContext(t, 10*time.Minute)
		// The client asks for its producer id when it starts; the error surfaces at the first
		// call that needs it.
		err = txn.BeginTransaction()
		if err == nil {
			err = txn.ProduceSync(ctx, &kgo.Record{Topic: "gaps", Value: []byte("x")}).FirstErr()
		}
		if !errors.Is(err, kerr.TransactionalIDAuthorizationFailed) || ctx.Err() != nil {
			t.Fatalf("transactional produce: %v (context %v); want TRANSACTIONAL_ID_AUTHORIZATION_FAILED before the deadline", err, ctx.Err())
		}
	})

	t.Run("replica assignment", func(t *testing.T) {
		cfg := sarama.NewConfig()
		cfg.Version = sarama.V2_8_0_0
		admin, err := sarama.NewClusterAdmin([]string{b0.Addr}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		// Partition 0 led by broker 1, partition 1 by broker 0; the second replicas are noted.
		err = admin.CreateTopic("assigned", &sarama.TopicDetail{NumPartitions: -1, ReplicationFactor: -1,
			ReplicaAssignment: map[int32][]int32{0: {1, 0}, 1: {0, 1}}}, false)
		if err != nil {
			t.Fatalf("create with an assignment: %v", err)
		}
		meta := kmsg.NewPtrMetadataRequest()
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr("assigned")
		meta.Topics = append(meta.Topics, mt)
		mresp, err := meta.RequestWith(testContext(t, time.Minute), produced)
		if err != nil {
			t.Fatal(err)
		}
		leaders := map[int32]int32{}
		for _, p := range mresp.Topics[0].Partitions {
			leaders[p.Partition] = p.Leader
		}
		if len(leaders) != 2 || leaders[0] != 1 || leaders[1] != 0 {
			t.Fatalf("leaders %v, want partition 0 on broker 1 and partition 1 on broker 0", leaders)
		}
		err = admin.CreateTopic("misassigned", &sarama.TopicDetail{NumPartitions: -1, ReplicationFactor: -1,
			ReplicaAssignment: map[int32][]int32{0: {0, 9}}}, false)
		var te *sarama.TopicError
		if !errors.As(err, &te) || te.Err != sarama.ErrInvalidReplicaAssignment || te.ErrMsg == nil || !strings.Contains(*te.ErrMsg, "broker 9") {
			t.Fatalf("create naming broker 9: %v; want INVALID_REPLICA_ASSIGNMENT naming broker 9", err)
		}
	})
}

func kgoClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}
