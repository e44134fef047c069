package server

// Error mapping: a Go error to the Kafka error code of a response.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
)

// errorCode is the Kafka error code for err: the code of a kerr error anywhere in its
// chain, else UNKNOWN_SERVER_ERROR. Context expiry maps to REQUEST_TIMED_OUT.
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return kerr.RequestTimedOut.Code
	}
	return kerr.UnknownServerError.Code
}
