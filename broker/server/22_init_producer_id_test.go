package server

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestInitProducerID(t *testing.T) {
	b := startTestBroker(t)
	c := b.dial(t)
	init := func(version int16, txn *string, id int64, epoch int16) *kmsg.InitProducerIDResponse {
		t.Helper()
		req := kmsg.NewPtrInitProducerIDRequest()
		req.Version, req.TransactionalID, req.ProducerID, req.ProducerEpoch = version, txn, id, epoch
		corr := c.sendExact(req)
		got, resp := c.recv()
		if got != corr {
			t.Fatalf("correlation %d, want %d", got, corr)
		}
		return resp.(*kmsg.InitProducerIDResponse)
	}
	first := init(0, nil, -1, -1)
	second := init(4, nil, -1, -1)
	if first.ErrorCode != 0 || second.ErrorCode != 0 || first.ProducerEpoch != 0 || first.ProducerID == second.ProducerID {
		t.Fatalf("two new producers: %+v and %+v, want distinct ids at epoch 0", first, second)
	}
	if r := init(3, nil, second.ProducerID, 4); r.ErrorCode != 0 || r.ProducerID != second.ProducerID || r.ProducerEpoch != 5 {
		t.Fatalf("epoch bump: %+v, want id %d epoch 5", r, second.ProducerID)
	}
	if r := init(4, kmsg.StringPtr("tx"), -1, -1); r.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("transactional id: error %d, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", r.ErrorCode)
	}
	b.cluster.mu.Lock()
	b.cluster.producerIDErr = errors.New("etcd: context deadline exceeded")
	b.cluster.mu.Unlock()
	if r := init(4, nil, -1, -1); r.ErrorCode != kerr.CoordinatorNotAvailable.Code || r.ProducerID != -1 {
		t.Fatalf("etcd down: %+v, want COORDINATOR_NOT_AVAILABLE (retriable)", r)
	}
}
