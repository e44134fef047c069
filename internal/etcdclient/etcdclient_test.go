package etcdclient

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Only gRPC's own errors for an answer that is not gRPC count; etcd's errors, deadlines and
// unreachable peers (which gRPC redials by itself) do not.
func TestNotEtcd(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{status.Error(codes.Unimplemented, "unexpected HTTP status code received from server: 404 (Not Found); malformed header: missing HTTP content-type"), true},
		{status.Error(codes.Unknown, "malformed header: missing HTTP content-type"), true},
		{status.Error(codes.Internal, `transport: received unexpected content-type "text/html"`), true},
		{fmt.Errorf("read metadata: %w", status.Error(codes.Unavailable, "unexpected HTTP status code received from server: 502 (Bad Gateway)")), true},
		{nil, false},
		{rpctypes.ErrGRPCKeyNotFound, false},
		{rpctypes.ErrGRPCNoLeader, false},
		{status.Error(codes.Unavailable, "connection error: desc = \"transport: Error while dialing: dial tcp 10.96.0.12:2379: connect: connection refused\""), false},
		{context.DeadlineExceeded, false},
		{errors.New("unexpected HTTP status code received from server"), false}, // not a gRPC status
	} {
		if got := NotEtcd(tc.err); got != tc.want {
			t.Errorf("NotEtcd(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
