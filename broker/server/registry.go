package server

import (
	"context"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handler answers one decoded request. A nil response with a nil error means "send nothing"
// (Produce with acks=0). An error closes the connection, as Kafka does for requests it
// cannot make sense of.
type handler func(s *Server, ctx context.Context, rc *requestContext, req kmsg.Request) (kmsg.Response, error)

type registration struct {
	key      int16
	min, max int16
	handle   handler
}

// handlers is filled by the init functions of the NN_name.go files, so ApiVersions lists
// exactly what this broker answers.
var handlers = map[int16]registration{}

// register records that the API key is answered for versions min..max by h.
func register(key, min, max int16, h handler) {
	if _, dup := handlers[key]; dup {
		panic("server: api key registered twice: " + kmsg.NameForKey(key))
	}
	if max > kmsg.RequestForKey(key).MaxVersion() {
		panic("server: " + kmsg.NameForKey(key) + " registered beyond what kmsg can encode")
	}
	handlers[key] = registration{key: key, min: min, max: max, handle: h}
}

// supportedKeys returns the registrations ordered by key.
func supportedKeys() []registration {
	out := make([]registration, 0, len(handlers))
	for _, r := range handlers {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}
