package server

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Protocol tracing (KAFSCALE_TRACE_KAFKA): one log line per request read and one per
// response written (or not written), so a client's conversation with the broker can be
// followed by correlation id. The lines go to Config.TraceLogger at info level: the broker
// binary gives it a handler of its own, so turning tracing on is the decision to see them,
// whatever KAFSCALE_LOG_LEVEL says. It costs a reflective walk of
// each response for its error codes, so it is for debugging, not for production traffic.

// traceRequest logs a request that was read and decoded.
func (c *conn) traceRequest(in *inflight, clientID string, size int32) {
	c.s.traceLog.Info("kafka request", "api", kmsg.NameForKey(in.key), "version", in.version,
		"client_id", clientID, "correlation_id", in.correlationID, "bytes", size, "remote", c.remote)
}

// traceUnreadable logs a request frame that closes the connection before it is handled.
func (c *conn) traceUnreadable(size int32, err error) {
	c.s.traceLog.Info("kafka request refused", "bytes", size, "remote", c.remote, "outcome", "connection closed: "+err.Error())
}

// traceResponse logs what became of a request: outcome is "ok", the error codes the
// response carries, "no response" (acks=0 produce) or why the connection was closed.
func (c *conn) traceResponse(in *inflight, bytes int64, outcome string) {
	c.s.traceLog.Info("kafka response", "api", kmsg.NameForKey(in.key), "version", in.version,
		"client_id", in.clientID, "correlation_id", in.correlationID, "bytes", bytes,
		"outcome", outcome, "duration_ms", float64(time.Since(in.start).Microseconds())/1000, "remote", c.remote)
}

// responseOutcome is "ok" when no ErrorCode field anywhere in resp is set, else the error
// names with their counts ("errors: NOT_LEADER_FOR_PARTITION×2, UNKNOWN_TOPIC_OR_PARTITION").
func responseOutcome(resp kmsg.Response) string {
	counts := map[int16]int{}
	collectErrorCodes(reflect.ValueOf(resp), counts, 0)
	if len(counts) == 0 {
		return "ok"
	}
	names := make([]string, 0, len(counts))
	for code, n := range counts {
		name := fmt.Sprintf("error code %d", code)
		if err := kerr.ErrorForCode(code); err != nil {
			if ke, ok := err.(*kerr.Error); ok {
				name = ke.Message
			}
		}
		if n > 1 {
			name = fmt.Sprintf("%s×%d", name, n)
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return "errors: " + strings.Join(names, ", ")
}

// collectErrorCodes counts the non-zero int16 ErrorCode fields under v. Byte slices (record
// batches) are not walked; depth bounds the walk (kmsg responses nest four or five levels).
func collectErrorCodes(v reflect.Value, counts map[int16]int, depth int) {
	if depth > 8 {
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			collectErrorCodes(v.Elem(), counts, depth+1)
		}
	case reflect.Slice:
		if k := v.Type().Elem().Kind(); k != reflect.Struct && k != reflect.Pointer {
			return
		}
		for i := 0; i < v.Len(); i++ {
			collectErrorCodes(v.Index(i), counts, depth+1)
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < v.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			fv := v.Field(i)
			if f.Name == "ErrorCode" && fv.Kind() == reflect.Int16 {
				if code := int16(fv.Int()); code != 0 {
					counts[code]++
				}
				continue
			}
			collectErrorCodes(fv, counts, depth+1)
		}
	}
}
