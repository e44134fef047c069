package server

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The outcome a trace line reports: ok, or every error code anywhere in the response.
func TestResponseOutcome(t *testing.T) {
	resp := kmsg.NewPtrProduceResponse()
	if got := responseOutcome(resp); got != "ok" {
		t.Errorf("empty response: %q", got)
	}
	topic := kmsg.NewProduceResponseTopic()
	for _, code := range []int16{0, kerr.NotLeaderForPartition.Code, kerr.NotLeaderForPartition.Code, kerr.UnknownTopicOrPartition.Code} {
		p := kmsg.NewProduceResponseTopicPartition()
		p.ErrorCode = code
		topic.Partitions = append(topic.Partitions, p)
	}
	resp.Topics = append(resp.Topics, topic)
	if got, want := responseOutcome(resp), "errors: NOT_LEADER_FOR_PARTITION×2, UNKNOWN_TOPIC_OR_PARTITION"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	fc := kmsg.NewPtrFindCoordinatorResponse()
	fc.ErrorCode = kerr.CoordinatorNotAvailable.Code
	if got, want := responseOutcome(fc), "errors: COORDINATOR_NOT_AVAILABLE"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
